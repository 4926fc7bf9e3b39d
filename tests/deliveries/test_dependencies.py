"""Messages that wait for another: released when the parent meets the condition, cancelled when it cannot."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time

from deliveries.models import Message, Status
from deliveries.services.dependencies import dependencies_sweep, dependents_settle
from deliveries.services.dispatch import dispatch_due_messages
from deliveries.services.feedback import ProviderReport, report_apply
from deliveries.services.messages import (
    MessageValidationError,
    message_cancel,
    message_create,
    message_request_validate,
)
from deliveries.state import transition
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def create(**fields) -> Message:
    request, content = message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
    return message_create(request=request, content=content)


def delivered_receipt(message: Message) -> None:
    report_apply(
        ProviderReport(
            provider="locmem",
            event="delivered",
            dedupe_key=f"{message.provider_message_id}:delivered",
            message_id=message.pk,
            attempt=message.attempts,
        )
    )


def reload(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


def test_a_dependent_message_goes_only_after_its_parent_is_delivered(sms_outbox):
    parent = create(body="first")
    child = create(body="second", depends_on=parent.pk)
    assert child.status == Status.WAITING
    assert child.depends_on_condition == "delivered"

    run_burst_worker()
    parent = reload(parent)
    assert parent.status == Status.SENT
    assert reload(child).status == Status.WAITING
    assert dispatch_due_messages() == 0
    assert dependencies_sweep() == {"released": 0, "cancelled": 0}
    assert [m.body for m in sms_outbox] == ["first"]

    delivered_receipt(parent)
    child = reload(child)
    assert child.status == Status.SCHEDULED
    assert child.events.last().detail == f"Released: message #{parent.pk} it depends on was delivered."
    assert dispatch_due_messages() == 1
    run_burst_worker()
    assert reload(child).status == Status.SENT
    assert [m.body for m in sms_outbox] == ["first", "second"]


def test_a_parent_failure_cancels_the_dependent_with_the_reason(sms_outbox):
    parent = MessageFactory(status=Status.SENDING)
    child = create(depends_on=parent.pk, depends_on_condition="sent")
    transition(
        [parent.pk],
        to_status=Status.FAILED,
        fields={"last_error_code": "21211", "last_error_message": "Invalid 'To' number"},
    )
    child = reload(child)
    assert child.status == Status.CANCELLED
    reason = f"Not sent: message #{parent.pk} it depends on ended failed (21211: Invalid 'To' number)."
    assert child.last_error_message == reason
    assert child.events.last().detail == reason
    assert child.events.last().code == "dependency"
    run_burst_worker()
    assert sms_outbox == []


@pytest.mark.parametrize("status", [Status.UNDELIVERED, Status.CANCELLED, Status.SUPPRESSED])
def test_every_way_a_parent_can_fail_cancels_the_dependent(status):
    parent = MessageFactory(status=Status.SENT if status == Status.UNDELIVERED else Status.QUEUED)
    child = create(depends_on=parent.pk)
    transition([parent.pk], to_status=status)
    assert reload(child).status == Status.CANCELLED
    assert f"ended {status}" in reload(child).last_error_message


def test_cancelling_a_message_cancels_its_whole_chain():
    first = create()
    second = create(depends_on=first.pk, depends_on_condition="sent")
    third = create(depends_on=second.pk, depends_on_condition="sent")
    assert message_cancel(message=first, by="ada")
    assert reload(second).status == Status.CANCELLED
    assert reload(third).status == Status.CANCELLED
    assert f"message #{second.pk}" in reload(third).last_error_message


def test_a_person_can_cancel_a_waiting_message():
    child = create(depends_on=create().pk)
    assert message_cancel(message=child, by="ada")
    assert reload(child).status == Status.CANCELLED


def test_the_sent_condition_releases_with_the_delay(sms_outbox):
    parent = create(body="first")
    child = create(body="second", depends_on=parent.pk, depends_on_condition="sent", depends_on_delay=3600)
    with freeze_time(timezone.now()) as frozen:
        run_burst_worker()
        child = reload(child)
        assert child.status == Status.SCHEDULED
        assert child.send_at == timezone.now() + timedelta(hours=1)
        assert dispatch_due_messages() == 0
        frozen.tick(timedelta(hours=1))
        assert dispatch_due_messages() == 1
    run_burst_worker()
    assert [m.body for m in sms_outbox] == ["first", "second"]


def test_a_dependent_of_a_parent_already_delivered_is_released_at_once():
    parent = MessageFactory(status=Status.DELIVERED)
    child = create(depends_on=parent.pk)
    assert child.status == Status.SCHEDULED


def test_the_sweep_releases_what_a_crash_left_behind_and_is_idempotent():
    parent = MessageFactory(status=Status.SENT)
    child = create(depends_on=parent.pk)
    # The parent's status changed without the release (a crash between the two): the sweep catches it.
    Message.objects.filter(pk=parent.pk).update(status=Status.DELIVERED)
    assert dependencies_sweep() == {"released": 1, "cancelled": 0}
    assert dependencies_sweep() == {"released": 0, "cancelled": 0}
    assert dependents_settle(parent_ids=[parent.pk]) == {"released": 0, "cancelled": 0}
    assert reload(child).status == Status.SCHEDULED
    assert reload(child).events.filter(to_status=Status.SCHEDULED).count() == 1


def email_parent(**fields) -> Message:
    return MessageFactory(channel="email", recipient="ada@example.com", subject="Hi", **fields)


@pytest.mark.parametrize("engaged", [False, True])
def test_not_clicked_waits_for_the_window_then_goes_or_is_cancelled(engaged):
    start = timezone.now()
    parent = email_parent(status=Status.SENDING)
    with freeze_time(start) as frozen:
        child = create(depends_on=parent.pk, depends_on_condition="not_clicked", depends_on_window=2 * 86400)
        transition([parent.pk], to_status=Status.SENT)
        child = reload(child)
        assert child.status == Status.WAITING
        assert child.send_at == start + timedelta(days=2)
        frozen.tick(timedelta(days=1))
        if engaged:
            Message.objects.filter(pk=parent.pk).update(clicks_count=1, first_clicked_at=timezone.now())
        assert dependencies_sweep() == {"released": 0, "cancelled": 0}
        frozen.tick(timedelta(days=1))
        outcome = dependencies_sweep()
    child = reload(child)
    if engaged:
        assert outcome == {"released": 0, "cancelled": 1}
        assert child.status == Status.CANCELLED
        assert child.last_error_message == f"Not sent: message #{parent.pk} it depends on was clicked."
    else:
        assert outcome == {"released": 1, "cancelled": 0}
        assert child.status == Status.SCHEDULED


def test_not_opened_defaults_to_a_24_hour_window():
    parent = email_parent(status=Status.SENDING)
    child = create(depends_on=parent.pk, depends_on_condition="not_opened")
    assert child.depends_on_window == timedelta(hours=24)
    transition([parent.pk], to_status=Status.SENT)
    assert reload(child).send_at == reload(parent).sent_at + timedelta(hours=24)


def test_a_dependency_is_validated():
    sms = MessageFactory()
    email = email_parent()

    def errors(**fields):
        with pytest.raises(MessageValidationError) as caught:
            message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
        return caught.value.errors

    assert errors(depends_on=999999) == {"depends_on": ["No message with id 999999."]}
    assert "depends_on_condition" in errors(depends_on=sms.pk, depends_on_condition="not_clicked")
    assert "depends_on_condition" in errors(depends_on=sms.pk, depends_on_condition="read")
    assert "depends_on_delay" in errors(depends_on=sms.pk, depends_on_delay=-1)
    assert "depends_on_window" in errors(depends_on=sms.pk, depends_on_window=60)
    assert "depends_on_window" in errors(depends_on=email.pk, depends_on_condition="not_opened", depends_on_window=0)
    assert "send_at" in errors(depends_on=sms.pk, send_at=timezone.now() + timedelta(hours=1))
    assert "depends_on" in errors(depends_on_condition="sent")
    request, _ = message_request_validate(
        channel="sms", to="+14155550100", body="hi", depends_on=email.pk, depends_on_condition="not_opened"
    )
    assert request.dependency["depends_on"] == email


def test_a_status_change_costs_one_more_query_to_look_for_dependents():
    parent = MessageFactory(status=Status.SENT)
    with CaptureQueriesContext(connection) as queries:
        transition([parent.pk], to_status=Status.DELIVERED)
    lookups = [q["sql"] for q in queries.captured_queries if "depends_on_id" in q["sql"]]
    assert len(lookups) == 1
    queued = MessageFactory()
    with CaptureQueriesContext(connection) as queries:
        transition([queued.pk], to_status=Status.SENDING)
    assert not [q for q in queries.captured_queries if "depends_on_id" in q["sql"]]
