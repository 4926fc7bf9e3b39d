"""The RQ send job: a job that comes early waits for its time, or gives its messages back when far too early."""

import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from deliveries import jobs
from deliveries.models import Message, Status
from deliveries.services.bulk import messages_create_many
from deliveries.services.dispatch import dispatch_due_messages
from deliveries.services.messages import message_create, message_request_validate

pytestmark = pytest.mark.django_db(transaction=True)


def schedule(send_at, **fields):
    request, content = message_request_validate(
        **{"channel": "sms", "to": "+14155550100", "body": "hi", "send_at": send_at, **fields}
    )
    return message_create(request=request, content=content)


def test_a_job_arriving_long_before_its_time_gives_its_messages_back_to_the_dispatcher(sms_outbox):
    send_at = timezone.now() + timedelta(hours=1)
    message = schedule(send_at)
    Message.objects.filter(pk=message.pk).update(status=Status.QUEUED, queued_at=timezone.now())

    started = time.monotonic()
    assert jobs.send_messages([message.pk], not_before=send_at.timestamp()) == {}
    assert time.monotonic() - started < 600  # a hang guard, not a speed claim: waiting would have taken the hour

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


def _queued_sms(count: int, *, priority: str = "default") -> list[int]:
    items = (
        message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body="Hi", priority=priority)
        for i in range(count)
    )
    return messages_create_many(items=items, collect_ids=True).ids


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
