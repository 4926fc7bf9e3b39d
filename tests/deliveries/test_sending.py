"""The send path with the locmem SMS backend and Django's locmem email backend, through a real RQ worker."""

from datetime import timedelta

import django_rq
import pytest
from django.core import mail
from django.utils import timezone

from deliveries.models import Message, Status
from deliveries.sending.claims import claim_messages
from deliveries.services.dispatch import SEND_JOB, dispatch_due_messages, requeue_orphaned_messages
from deliveries.services.messages import message_cancel, message_create, message_request_validate
from tests.factories import MessageFactory
from tests.support import at_once, run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def create(**fields):
    request, content = message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
    return message_create(request=request, content=content)


def test_a_queued_sms_is_sent_by_the_worker_with_its_timeline(sms_outbox):
    message = create(body="Your code is 1234")
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider == "locmem"
    assert message.provider_message_id.startswith("locmem-")
    assert message.attempts == 1
    assert [m.body for m in sms_outbox] == ["Your code is 1234"]
    assert list(message.events.values_list("to_status", flat=True)) == ["queued", "sending", "sent"]


def test_an_email_goes_through_djangos_email_backend_with_our_id_in_metadata():
    message = create(channel="email", to="ada@example.com", subject="Hello", body="Text", html_body="<b>HTML</b>")
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ada@example.com"]
    assert sent.alternatives[0][0] == "<b>HTML</b>"
    assert sent.metadata == {"tidings_message_id": str(message.pk), "tidings_attempt": "1"}


def test_priorities_go_to_their_own_queues():
    create(priority="high")
    create(priority="low")
    assert django_rq.get_queue("high").count == 1
    assert django_rq.get_queue("low").count == 1
    assert django_rq.get_queue("default").count == 0


def test_a_message_cancelled_while_queued_is_never_sent(sms_outbox):
    message = create()
    assert message_cancel(message=message, by="test")
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.CANCELLED
    assert sms_outbox == []


def test_a_job_run_twice_sends_once(sms_outbox):
    message = create()
    django_rq.get_queue("default").enqueue(SEND_JOB, [message.pk])
    run_burst_worker()
    assert len(sms_outbox) == 1
    assert Message.objects.get(pk=message.pk).attempts == 1


def test_racing_claims_never_share_a_message():
    ids = [MessageFactory(status=Status.QUEUED).pk for _ in range(60)]
    claimed = at_once(lambda: [m.pk for m in claim_messages(ids)], 4)
    every_claim = [pk for claim_ids in claimed for pk in claim_ids]
    assert sorted(every_claim) == sorted(ids)


def test_due_scheduled_messages_are_dispatched_once_and_future_ones_wait(sms_outbox):
    due = create(send_at=timezone.now() + timedelta(seconds=30))
    later = create(send_at=timezone.now() + timedelta(hours=1))
    Message.objects.filter(pk=due.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    assert dispatch_due_messages() == 1
    assert dispatch_due_messages() == 0
    run_burst_worker()
    assert Message.objects.get(pk=due.pk).status == Status.SENT
    assert Message.objects.get(pk=later.pk).status == Status.SCHEDULED
    assert len(sms_outbox) == 1


def test_queued_messages_whose_job_redis_lost_are_queued_again(clean_redis, sms_outbox):
    message = create()
    clean_redis.flushdb()
    assert requeue_orphaned_messages(older_than=0) == 1
    assert requeue_orphaned_messages(older_than=0) == 0  # the new job exists now
    run_burst_worker()
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert len(sms_outbox) == 1
