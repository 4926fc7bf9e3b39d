"""The dispatcher's lookahead: scheduled messages claimed a little before their time, never sent before it."""

import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq.job import Job
from rq.registry import FinishedJobRegistry

from deliveries import jobs
from deliveries.management.commands.run_dispatcher import PASS_LIMIT, next_pass_after_claims
from deliveries.models import Message, Status
from deliveries.services import sending
from deliveries.services.bulk import messages_create_many
from deliveries.services.dispatch import (
    HELD_JOB_WAIT_SECONDS,
    JOB_SPAN_SECONDS,
    HeldJobs,
    SendJob,
    WaitingSendJobs,
    dispatch_due_messages,
    enqueue_jobs,
    jobs_take,
    new_job_id,
    next_send_at,
    requeue_orphaned_messages,
    send_jobs_adopt,
)
from deliveries.services.messages import message_cancel, message_create, message_request_validate
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def schedule(send_at, **fields):
    request, content = message_request_validate(
        **{"channel": "sms", "to": "+14155550100", "body": "hi", "send_at": send_at, **fields}
    )
    return message_create(request=request, content=content)


def queued_jobs(queue: str = "default") -> list[Job]:
    rq_queue = django_rq.get_queue(queue)
    return Job.fetch_many(rq_queue.job_ids, connection=rq_queue.connection)


def test_a_message_due_within_the_lookahead_is_claimed_now_and_held_until_its_time():
    send_at = timezone.now() + timedelta(seconds=30)
    message = schedule(send_at)
    held = HeldJobs(lead=0.1)

    assert dispatch_due_messages(lookahead=60, held=held) == 1

    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert queued_jobs() == []  # held by the dispatcher, not yet in Redis
    assert held.next_push_at() == pytest.approx(send_at.timestamp() - 0.1)
    assert held.push_due(now=send_at.timestamp() - 0.2) == 0
    assert held.push_due(now=send_at.timestamp() - 0.1) == 1
    [job] = queued_jobs()
    assert job.args == ([message.pk],)
    assert job.kwargs == {"not_before": send_at.timestamp()}
    assert job.id == message.job_id
    assert len(held) == 0


def test_without_a_lookahead_a_message_not_yet_due_stays_scheduled():
    schedule(timezone.now() + timedelta(seconds=30))
    assert dispatch_due_messages(held=HeldJobs()) == 0
    assert dispatch_due_messages(lookahead=10, held=HeldJobs()) == 0


def test_due_messages_go_to_redis_at_once_without_not_before_while_later_ones_are_held():
    due = schedule(timezone.now() + timedelta(seconds=30))
    Message.objects.filter(pk=due.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    later = schedule(timezone.now() + timedelta(seconds=30))
    held = HeldJobs()

    assert dispatch_due_messages(lookahead=60, held=held) == 2

    [job] = queued_jobs()
    assert job.args == ([due.pk],)
    assert job.kwargs == {}
    assert len(held) == 1
    assert held.push_all() == 1
    assert [job.args for job in queued_jobs()] == [([due.pk],), ([later.pk],)]


def test_messages_due_further_apart_than_a_job_span_get_jobs_of_their_own_each_waiting_for_its_last():
    first_at = timezone.now() + timedelta(seconds=30)
    first = schedule(first_at)
    close = schedule(first_at + timedelta(seconds=JOB_SPAN_SECONDS / 2))
    apart = schedule(first_at + timedelta(seconds=1))
    held = HeldJobs()

    assert dispatch_due_messages(lookahead=60, held=held) == 3
    held.push_all()

    assert [(job.args, job.kwargs) for job in queued_jobs()] == [
        (([first.pk, close.pk],), {"not_before": (first_at + timedelta(seconds=JOB_SPAN_SECONDS / 2)).timestamp()}),
        (([apart.pk],), {"not_before": (first_at + timedelta(seconds=1)).timestamp()}),
    ]


def test_a_message_dispatched_early_is_not_sent_before_its_time(sms_outbox):
    send_at = timezone.now() + timedelta(seconds=1.5)
    message = schedule(send_at)
    # No holder: the job goes to Redis at once and the worker waits in the job.
    assert dispatch_due_messages(lookahead=10) == 1

    run_burst_worker()

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.sending_at >= send_at
    assert [m.id for m in sms_outbox] == [message.pk]


def test_a_message_cancelled_between_early_dispatch_and_its_time_is_not_sent(sms_outbox):
    send_at = timezone.now() + timedelta(seconds=1)
    message = schedule(send_at)
    assert dispatch_due_messages(lookahead=10) == 1
    assert message_cancel(message=message, by="test")

    run_burst_worker()

    message.refresh_from_db()
    assert message.status == Status.CANCELLED
    assert sms_outbox == []


def test_a_lost_early_job_is_rebuilt_by_the_reconciler_and_still_waits_for_its_time(sms_outbox):
    send_at = timezone.now() + timedelta(seconds=1.5)
    message = schedule(send_at)
    held = HeldJobs()
    assert dispatch_due_messages(lookahead=10, held=held) == 1
    del held  # the dispatcher died holding the job: Redis never saw it

    assert requeue_orphaned_messages(older_than=0) == 1
    [job] = queued_jobs()
    assert job.kwargs == {"not_before": send_at.timestamp()}

    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.sending_at >= send_at
    assert len(sms_outbox) == 1


def test_a_job_arriving_long_before_its_time_gives_its_messages_back_to_the_dispatcher(sms_outbox, settings):
    send_at = timezone.now() + timedelta(hours=1)
    message = schedule(send_at)
    Message.objects.filter(pk=message.pk).update(status=Status.QUEUED, queued_at=timezone.now())

    started = time.monotonic()
    assert jobs.send_messages([message.pk], not_before=send_at.timestamp()) == {}
    assert time.monotonic() - started < settings.DISPATCH_LOOKAHEAD  # it did not wait for the hour

    message.refresh_from_db()
    assert message.status == Status.SCHEDULED
    assert message.send_at == send_at
    assert sms_outbox == []
    assert dispatch_due_messages(lookahead=60) == 0


def test_a_plain_job_without_not_before_still_sends(sms_outbox):
    request, content = message_request_validate(channel="sms", to="+14155550100", body="now")
    message = message_create(request=request, content=content)
    django_rq.get_queue("default").empty()
    assert jobs.send_messages([message.pk]) == {Status.SENT: 1}
    assert len(sms_outbox) == 1


def test_next_send_at_is_the_earliest_scheduled_time():
    assert next_send_at() is None
    soon = timezone.now() + timedelta(seconds=20)
    schedule(soon + timedelta(seconds=5))
    schedule(soon)
    assert next_send_at() == soon


def test_a_small_job_takes_over_the_plain_send_jobs_waiting_behind_it():
    queue = django_rq.get_queue("default")
    singles = [(new_job_id(), [pk]) for pk in (1, 2, 3)]
    held = SendJob(new_job_id(), [4], not_before=time.time() + 60)  # waits for its time: not taken early
    due = SendJob(new_job_id(), [7], not_before=time.time() - 1)  # its time has come: taken like the others
    pair = (new_job_id(), [5, 6])
    enqueue_jobs({"default": [*singles, held, due]})
    other = queue.enqueue("deliveries.services.dispatch.new_job_id")  # not a send job: left alone
    enqueue_jobs({"default": [pair]})

    assert send_jobs_adopt(queue, limit=5) == [1, 2, 3, 7]  # the pair would go over the limit
    assert queue.get_job_ids() == [held.job_id, other.id, pair[0]]
    assert not any(Job.exists(job_id, connection=queue.connection) for job_id, _ in singles)

    assert send_jobs_adopt(queue, limit=10) == [5, 6]
    assert queue.get_job_ids() == [held.job_id, other.id]
    assert send_jobs_adopt(queue, limit=10) == []
    assert send_jobs_adopt(queue, limit=0) == []


def test_a_job_some_worker_took_first_is_not_taken_again():
    queue = django_rq.get_queue("default")
    first, second = (new_job_id(), [1]), (new_job_id(), [2])
    enqueue_jobs({"default": [first, second]})
    jobs = Job.fetch_many([first[0], second[0]], connection=queue.connection)
    queue.remove(first[0])  # a worker dequeues it after we looked at the queue, before we take it
    assert jobs_take(queue, jobs) == [second[0]]
    assert Job.exists(first[0], connection=queue.connection)  # still the other worker's to run
    assert not Job.exists(second[0], connection=queue.connection)
    assert queue.get_job_ids() == []


def test_messages_the_api_queued_one_job_each_go_out_in_the_first_job_each_once(sms_outbox):
    queue = django_rq.get_queue("default")
    created = []
    for i in range(30):
        request, content = message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi")
        created.append(message_create(request=request, content=content).pk)
    assert queue.count == 30  # one job per message, as the API queues them

    run_burst_worker()

    assert FinishedJobRegistry(queue=queue).count == 1  # the first job took the other 29 over
    assert sorted(m.id for m in sms_outbox) == created
    assert set(Message.objects.filter(pk__in=created).values_list("status", flat=True)) == {Status.SENT}


def test_messages_of_jobs_taken_by_a_process_that_died_before_sending_are_queued_again():
    queue = django_rq.get_queue("default")
    created = []
    for i in range(3):
        request, content = message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi")
        created.append(message_create(request=request, content=content).pk)
    assert send_jobs_adopt(queue, limit=10) == created  # ... and the process that took them dies here
    assert queue.count == 0

    assert requeue_orphaned_messages(older_than=0) == 3
    [job] = Job.fetch_many(queue.get_job_ids(), connection=queue.connection)
    assert job.args == (created,)


def _queued_sms(count: int, *, priority: str = "default") -> list[int]:
    items = (
        message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi", priority=priority)
        for i in range(count)
    )
    return messages_create_many(items=items, collect_ids=True).ids


def test_a_running_send_job_takes_over_full_jobs_as_its_calls_finish(sms_outbox, settings):
    settings.SEND_BATCH_SIZE = 5
    created = _queued_sms(15)
    queue = django_rq.get_queue("default")
    assert queue.count == 3  # three full jobs: none is small enough to be filled up at its start

    run_burst_worker()

    assert FinishedJobRegistry(queue=queue).count == 1  # the first job sent the other two's messages
    assert sorted(m.id for m in sms_outbox) == created
    assert set(Message.objects.filter(pk__in=created).values_list("status", flat=True)) == {Status.SENT}


def test_a_send_job_takes_over_nothing_once_its_time_is_up(sms_outbox, settings):
    settings.SEND_BATCH_SIZE = 5
    settings.SEND_JOB_TAKE_OVER_SECONDS = 0
    created = _queued_sms(15)

    run_burst_worker()

    assert FinishedJobRegistry(queue=django_rq.get_queue("default")).count == 3
    assert sorted(m.id for m in sms_outbox) == created


def test_a_send_job_takes_over_nothing_while_a_higher_priority_job_waits(settings):
    settings.SEND_BATCH_SIZE = 5
    default_ids = _queued_sms(5)
    waiting = WaitingSendJobs(django_rq.get_queue("default"))
    urgent = _queued_sms(1, priority="high")
    assert waiting.more() == ([], None)  # the worker must get to the high job first
    assert django_rq.get_queue("default").count == 1

    django_rq.get_queue("high").empty()
    assert waiting.more() == (default_ids, None)
    assert WaitingSendJobs(django_rq.get_queue("high")).queues_first == []
    assert urgent


def test_taken_messages_of_another_channel_are_sent_after_the_channel_being_sent(sms_outbox, mailoutbox, settings):
    sms = _queued_sms(3)
    email_items = (
        message_request_validate(channel="email", to=f"user{i}@example.com", subject="Hi", body="Hi") for i in range(2)
    )
    emails = messages_create_many(items=email_items, collect_ids=True).ids
    later_sms = _queued_sms(2)
    offered = [emails + later_sms, [999_999]]  # one take of both channels, then one that must never be asked for

    def more() -> tuple[list[int], None]:
        return offered.pop(0), None

    assert sending.send_messages(sms, more=more) == {Status.SENT: 7}
    assert offered == [[999_999]]  # after a take with another channel's messages, nothing more was taken
    assert sorted(m.id for m in sms_outbox) == sorted(sms + later_sms)
    assert len(mailoutbox) == 2


def test_a_running_send_job_waits_for_a_held_job_due_in_a_moment_and_sends_it_on_time(sms_outbox):
    now = _queued_sms(3)
    later = _queued_sms(2)
    queue = django_rq.get_queue("default")
    queue.empty()
    not_before = time.time() + 0.4
    enqueue_jobs({"default": [SendJob(new_job_id(), now), SendJob(new_job_id(), later, not_before=not_before)]})

    run_burst_worker()

    assert FinishedJobRegistry(queue=queue).count == 1  # the first job waited for the second and took it
    assert sorted(m.id for m in sms_outbox) == now + later
    sending_at = dict(Message.objects.filter(pk__in=later).values_list("pk", "sending_at"))
    assert min(sending_at.values()).timestamp() >= not_before  # never before its time


def test_a_held_job_due_later_than_a_moment_is_left_to_its_own_work_horse(settings):
    settings.SEND_BATCH_SIZE = 5
    later = _queued_sms(2)
    django_rq.get_queue("default").empty()
    held_until = time.time() + HELD_JOB_WAIT_SECONDS + 5
    enqueue_jobs({"default": [SendJob(new_job_id(), later, not_before=held_until)]})
    waiting = WaitingSendJobs(django_rq.get_queue("default"))
    assert waiting.more() == ([], None)

    soon = time.time() + 0.5
    enqueue_jobs({"default": [SendJob(new_job_id(), [1], not_before=soon)]})
    assert waiting.more() == ([], soon)


def test_a_job_held_for_its_time_sends_nothing_before_it_and_fails_what_expired_while_it_waited(sms_outbox):
    # The job reads its rows and opens its call pool first, then waits: the wait must still hold every call back,
    # and a deadline that passes during it must still count.
    on_time, expiring = _queued_sms(2)
    Message.objects.filter(pk=expiring).update(expires_at=timezone.now() + timedelta(seconds=0.2))
    not_before = time.time() + 0.5

    assert jobs.send_messages([on_time, expiring], not_before=not_before) == {Status.SENT: 1, Status.FAILED: 1}

    assert [message.id for message in sms_outbox] == [on_time]
    assert Message.objects.get(pk=on_time).sending_at.timestamp() >= not_before
    failed = Message.objects.get(pk=expiring)
    assert (failed.status, failed.last_error_code, failed.attempts) == (Status.FAILED, "expired", 0)


def test_after_claiming_the_dispatcher_looks_again_at_once_only_when_more_may_be_due_now():
    # With a lookahead, what comes into it next waits a moment (a job span) for the next pass, so a burst is cut
    # into fuller held jobs; a full pass, or no lookahead (what it claims is due), means at once.
    now, regular = 1000.0, 1000.2
    assert next_pass_after_claims(120, lookahead=2.0, wake_at=regular, now=now) == now + JOB_SPAN_SECONDS
    assert next_pass_after_claims(120, lookahead=2.0, wake_at=now + 0.01, now=now) == now + 0.01
    assert next_pass_after_claims(PASS_LIMIT, lookahead=2.0, wake_at=regular, now=now) == now
    assert next_pass_after_claims(120, lookahead=0.0, wake_at=regular, now=now) == now
