"""A running send job takes over the send jobs waiting behind it: at its start, then as its calls finish."""

import time

import django_rq
import pytest
from rq.job import Job
from rq.registry import FinishedJobRegistry

from deliveries.job_source import HELD_JOB_WAIT_SECONDS, NOTHING_MORE, JobSource, NextBatch, jobs_take, send_jobs_adopt
from deliveries.models import Message, Status
from deliveries.services.bulk import messages_create_many
from deliveries.services.dispatch import SendJob, enqueue_jobs, new_job_id, requeue_orphaned_messages
from deliveries.services.messages import message_create, message_request_validate
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


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
    source = JobSource(django_rq.get_queue("default"))
    urgent = _queued_sms(1, priority="high")
    # Nothing, and nothing more: the worker must get to the high job first.
    assert source.next_batch() == NOTHING_MORE == NextBatch([], ask_again_at=None, more_may_come=False)
    assert django_rq.get_queue("default").count == 1

    django_rq.get_queue("high").empty()
    assert source.next_batch() == NextBatch(default_ids, ask_again_at=None, more_may_come=True)
    assert JobSource(django_rq.get_queue("high")).queues_first == []
    assert urgent


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
    source = JobSource(django_rq.get_queue("default"))
    assert source.next_batch() == NOTHING_MORE

    soon = time.time() + 0.5
    enqueue_jobs({"default": [SendJob(new_job_id(), [1], not_before=soon)]})
    assert source.next_batch() == NextBatch([], ask_again_at=soon, more_may_come=True)
