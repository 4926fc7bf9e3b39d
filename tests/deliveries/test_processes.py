"""Real worker and dispatcher processes against the test database, the real Redis and the fake Twilio."""

import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import Queue

from deliveries.models import Message, Status
from deliveries.services.dispatch import SEND_JOB
from deliveries.services.messages import message_cancel, message_create, message_request_validate
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def schedule_sms(to: str, send_at) -> Message:
    request, content = message_request_validate(channel="sms", to=to, body=f"Hello {to}", send_at=send_at)
    return message_create(request=request, content=content)


def test_scheduled_message_goes_out_within_a_second_of_its_time_despite_a_redis_flush(fake_twilio, clean_redis):
    env = process_env(**provider_env(fake_twilio))
    processes = [start_manage("run_worker", env=env), start_manage("run_dispatcher", "--interval", "0.1", env=env)]
    try:
        send_at = timezone.now() + timedelta(seconds=5)
        due = schedule_sms("+14155550101", send_at)
        cancelled = schedule_sms("+14155550102", send_at)
        assert message_cancel(message=cancelled, by="test")

        # Redis loses everything between scheduling and the due time.
        time.sleep(2)
        clean_redis.flushdb()
        assert fake_twilio.received == []

        [received] = wait_for(lambda: fake_twilio.received, timeout=15, message="the scheduled SMS")
        lag = received["received_at"] - send_at.timestamp()
        assert 0 <= lag < 1.0, f"sent {lag:.3f}s after its time"
        assert received["to"] == "+14155550101"

        wait_for(lambda: Message.objects.get(pk=due.pk).status == Status.SENT, timeout=10, message="status sent")
        time.sleep(1)  # give a wrongly dispatched cancelled message every chance to go out
        assert [m["to"] for m in fake_twilio.received] == ["+14155550101"]
        assert Message.objects.get(pk=cancelled.pk).status == Status.CANCELLED
    finally:
        outputs = [stop(p) for p in processes]
    assert "Traceback" not in "".join(outputs), outputs


def test_ten_workers_and_three_dispatchers_racing_on_the_same_due_messages_send_each_once(fake_twilio, settings):
    count = 300
    past = timezone.now() - timedelta(seconds=1)
    ids = [schedule_sms(f"+1415{7000000 + i}", timezone.now() + timedelta(hours=1)).pk for i in range(count)]
    Message.objects.filter(pk__in=ids).update(send_at=past)
    # Besides the dispatchers' jobs, every message also gets three stray jobs of its own, all racing.
    queue = django_rq.get_queue("default")
    for _ in range(3):
        for start in range(0, count, 25):
            queue.enqueue_many([Queue.prepare_data(SEND_JOB, args=(ids[start : start + 25],))])

    env = process_env(**provider_env(fake_twilio), SEND_BATCH_SIZE="20")
    processes = [start_manage("run_worker", env=env) for _ in range(10)]
    processes += [start_manage("run_dispatcher", "--interval", "0.1", env=env) for _ in range(3)]
    try:
        wait_for(
            lambda: Message.objects.filter(pk__in=ids, status=Status.SENT).count() == count,
            timeout=120,
            interval=0.5,
            message=f"{count} messages sent",
        )
    finally:
        outputs = [stop(p) for p in processes]
    per_recipient = fake_twilio.count_by_to()
    assert len(per_recipient) == count
    assert set(per_recipient.values()) == {1}
    assert fake_twilio.request_count == count
    assert set(Message.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    assert "Traceback" not in "".join(outputs)
