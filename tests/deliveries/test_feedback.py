"""deliveries.services.feedback on its own: what a report does to a message, whatever webhook brought it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Message, ProviderReceipt, Status
from deliveries.services.feedback import Outcome, ProviderReport, receipts_prune, report_apply
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def report(**fields) -> ProviderReport:
    return ProviderReport(**{"provider": "twilio", "event": "delivered", "dedupe_key": "k", **fields})


def test_outcomes_say_what_happened():
    message = MessageFactory(status=Status.SENT, provider="twilio", provider_message_id="SM1", attempts=1)
    assert report_apply(report(provider_message_id="SM1")) == Outcome.APPLIED
    assert report_apply(report(provider_message_id="SM1")) == Outcome.DUPLICATE
    assert report_apply(report(message_id=message.pk, attempt=2, dedupe_key="k2")) == Outcome.STALE
    assert report_apply(report(provider_message_id="SM-unknown")) == Outcome.PENDING
    assert report_apply(report(provider_message_id="SM-other"), keep_if_unknown=False) == Outcome.UNKNOWN
    assert report_apply(report()) == Outcome.UNKNOWN


def test_a_report_about_another_provider_id_than_the_messages_changes_nothing():
    message = MessageFactory(status=Status.SENT, provider="twilio", provider_message_id="SM-new", attempts=2)
    assert report_apply(report(message_id=message.pk, provider_message_id="SM-old")) == Outcome.STALE
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_a_report_round_trips_through_json_for_the_receipts_table():
    original = report(provider_message_id="SM1", occurred_at=timezone.now(), data={"a": 1}, error_code="30006")
    assert ProviderReport.from_json(original.as_json()) == original


def test_receipts_no_message_ever_claimed_are_pruned():
    old = ProviderReceipt.objects.create(provider="twilio", provider_message_id="SM1", report={})
    ProviderReceipt.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    ProviderReceipt.objects.create(provider="twilio", provider_message_id="SM2", report={})
    assert receipts_prune() == 1
    assert list(ProviderReceipt.objects.values_list("provider_message_id", flat=True)) == ["SM2"]
