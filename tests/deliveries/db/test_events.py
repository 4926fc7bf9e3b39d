"""Every way a line reaches a message's timeline: a report once per dedupe key, a new message's first line, a bulk
chunk's first lines."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.db.events import created_events_insert, created_message_insert, report_event_insert
from deliveries.db.row_inserts import rows_insert
from deliveries.models import Message, MessageEvent, Status
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def report(message, dedupe_key, kind="provider"):
    return report_event_insert(message, kind=kind, code="", detail="", data={}, dedupe_key=dedupe_key)


def test_a_provider_report_is_recorded_once_per_message():
    message = MessageFactory(status=Status.SENT)
    other = MessageFactory(status=Status.SENT)
    report(message, "twilio:SM1:delivered")
    report(other, "twilio:SM1:delivered")
    report(message, "", kind="note")
    report(message, "", kind="note")  # events without a key are never deduplicated
    with pytest.raises(IntegrityError), transaction.atomic():
        report(message, "twilio:SM1:delivered")
    assert MessageEvent.objects.filter(message=message).count() == 3


def test_a_new_message_and_its_first_line_are_stored_together_as_the_orm_would_store_them():
    now = timezone.now()
    values = {"channel": "sms", "recipient": "+14155550100", "body": "Hi", "status": Status.QUEUED, "queued_at": now}
    with CaptureQueriesContext(connection) as queries:
        message = created_message_insert(values, detail="Created by test.", now=now)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    stored = Message.objects.get(pk=message.pk)
    assert (stored.status, stored.body, stored.queued_at) == (Status.QUEUED, "Hi", now)
    [event] = stored.events.all()
    assert (event.kind, event.from_status, event.to_status, event.detail, event.created_at) == (
        MessageEvent.Kind.STATUS,
        "",
        Status.QUEUED,
        "Created by test.",
        now,
    )
    assert (event.code, event.data, event.dedupe_key) == ("", {}, "")


def test_messages_stored_in_bulk_get_their_status_or_the_error_that_failed_them():
    now = timezone.now()
    rows = [
        {"channel": "sms", "recipient": "+14155550101", "status": Status.QUEUED},
        {
            "channel": "sms",
            "recipient": "+14155550102",
            "status": Status.FAILED,
            "last_error_code": "render",
            "last_error_message": "Unknown variable.",
        },
    ]
    ids = rows_insert(Message, rows, now=now)
    created_events_insert(ids, rows, detail="Created in bulk by test.", now=now)
    events = MessageEvent.objects.filter(message_id__in=ids).order_by("message_id")
    assert [(e.message_id, e.kind, e.to_status, e.code, e.detail, e.created_at) for e in events] == [
        (ids[0], MessageEvent.Kind.STATUS, Status.QUEUED, "", "Created in bulk by test.", now),
        (
            ids[1],
            MessageEvent.Kind.ERROR,
            Status.FAILED,
            "render",
            "Created in bulk by test. Not sent: Unknown variable.",
            now,
        ),
    ]
