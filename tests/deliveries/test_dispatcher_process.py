"""A real dispatcher and worker with the lookahead: on time, never early, and a late cancel still honoured."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Message, Status
from deliveries.services.bulk import messages_create_many
from deliveries.services.dispatch import JOB_SPAN_SECONDS
from deliveries.services.messages import message_cancel, message_create, message_request_validate
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def schedule_sms(to: str, send_at) -> Message:
    request, content = message_request_validate(channel="sms", to=to, body=f"Hello {to}", send_at=send_at)
    return message_create(request=request, content=content)


def test_a_burst_claimed_ahead_goes_out_at_its_time_not_before_and_a_cancel_after_the_claim_holds(fake_twilio):
    env = process_env(**provider_env(fake_twilio), DISPATCH_LOOKAHEAD="3", SEND_BATCH_SIZE="10")
    send_at = timezone.now() + timedelta(seconds=10)
    burst = [schedule_sms(f"+1415{7100000 + i}", send_at) for i in range(30)]
    cancelled = schedule_sms("+14155550199", send_at)
    processes = [start_manage("run_worker", env=env) for _ in range(2)]
    processes.append(start_manage("run_dispatcher", "--interval", "0.1", env=env))
    try:
        wait_for(
            lambda: Message.objects.get(pk=cancelled.pk).status == Status.QUEUED,
            timeout=15,
            message="the message claimed ahead of its time",
        )
        assert timezone.now() < send_at, "claimed too late for this test to mean anything"
        assert message_cancel(message=cancelled, by="test")

        wait_for(
            lambda: Message.objects.filter(pk__in=[m.pk for m in burst], status=Status.SENT).count() == len(burst),
            timeout=60,
            interval=0.25,
            message="the burst sent",
        )
    finally:
        outputs = [stop(p) for p in processes]
    received = fake_twilio.received
    assert sorted(r["to"] for r in received) == sorted(m.recipient for m in burst)
    assert min(r["received_at"] for r in received) >= send_at.timestamp()
    assert Message.objects.get(pk=cancelled.pk).status == Status.CANCELLED
    assert "Traceback" not in "".join(outputs), outputs


@pytest.mark.parametrize("lookahead", ["0", "2"])
def test_the_dispatcher_wakes_for_a_message_due_long_before_its_next_poll(fake_twilio, lookahead):
    env = process_env(**provider_env(fake_twilio), DISPATCH_LOOKAHEAD=lookahead)
    send_at = timezone.now() + timedelta(seconds=8)
    message = schedule_sms("+14155550101", send_at)
    # One pass at start finds nothing due; the next regular pass would be two minutes later.
    processes = [start_manage("run_worker", env=env), start_manage("run_dispatcher", "--interval", "120", env=env)]
    try:
        [received] = wait_for(lambda: fake_twilio.received, timeout=40, message="the scheduled SMS")
    finally:
        outputs = [stop(p) for p in processes]
    assert received["received_at"] >= send_at.timestamp()
    assert received["to"] == message.recipient
    assert "Traceback" not in "".join(outputs), outputs


def test_a_burst_coming_into_the_lookahead_is_claimed_in_time_in_jobs_of_at_most_its_span(fake_twilio):
    # 400 messages due one every 2.5 ms come into the lookahead at that pace, and are claimed pass after pass.
    env = process_env(**provider_env(fake_twilio), DISPATCH_LOOKAHEAD="3")
    start = timezone.now() + timedelta(seconds=7)
    count, spread = 400, 1.0
    items = (
        message_request_validate(
            channel="sms", to=f"+1415{7200000 + i}", body="Hi", send_at=start + timedelta(seconds=spread * i / count)
        )
        for i in range(count)
    )
    messages_create_many(items=items)
    dispatcher = start_manage("run_dispatcher", "--interval", "0.2", env=env)
    try:
        wait_for(
            lambda: not Message.objects.filter(status=Status.SCHEDULED).exists(),
            timeout=20,
            interval=0.25,
            message="the burst claimed",
        )
    finally:
        output = stop(dispatcher)
    assert timezone.now() < start + timedelta(seconds=spread), "claimed too late for this test to mean anything"
    jobs: dict[str, list] = {}
    for job_id, send_at in Message.objects.values_list("job_id", "send_at"):
        jobs.setdefault(job_id, []).append(send_at)
    assert "" not in jobs
    assert all(max(due) - min(due) <= timedelta(seconds=JOB_SPAN_SECONDS) for due in jobs.values())
    # Most jobs a span's worth (20 messages here), not a job for each message or two.
    assert len(jobs) <= 2 * spread / JOB_SPAN_SECONDS + 4, sorted(len(due) for due in jobs.values())
    assert "Traceback" not in output, output
