"""The dispatcher's lookahead: scheduled messages claimed a little before their time, never sent before it."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq.job import Job

from deliveries.management.commands.run_dispatcher import PASS_LIMIT, next_pass_after_claims
from deliveries.models import Message, Status
from deliveries.services.dispatch import (
    JOB_SPAN_SECONDS,
    HeldJobs,
    dispatch_due_messages,
    next_send_at,
    requeue_orphaned_messages,
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


def test_next_send_at_is_the_earliest_scheduled_time():
    assert next_send_at() is None
    soon = timezone.now() + timedelta(seconds=20)
    schedule(soon + timedelta(seconds=5))
    schedule(soon)
    assert next_send_at() == soon


def test_after_claiming_the_dispatcher_looks_again_at_once_only_when_more_may_be_due_now():
    # With a lookahead, what comes into it next waits a moment (a job span) for the next pass, so a burst is cut
    # into fuller held jobs; a full pass, or no lookahead (what it claims is due), means at once.
    now, regular = 1000.0, 1000.2
    assert next_pass_after_claims(120, lookahead=2.0, wake_at=regular, now=now) == now + JOB_SPAN_SECONDS
    assert next_pass_after_claims(120, lookahead=2.0, wake_at=now + 0.01, now=now) == now + 0.01
    assert next_pass_after_claims(PASS_LIMIT, lookahead=2.0, wake_at=regular, now=now) == now
    assert next_pass_after_claims(120, lookahead=0.0, wake_at=regular, now=now) == now
