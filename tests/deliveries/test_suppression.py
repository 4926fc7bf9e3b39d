"""The suppression list, checked by the worker at send time."""

import pytest
from django.core import mail

from deliveries.models import Message, Status, Suppression
from deliveries.services.messages import message_create, message_request_validate
from deliveries.services.suppression import suppression_add, suppression_lift, suppressions_blocking
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

Reason = Suppression.Reason


def create(**fields) -> Message:
    request, content = message_request_validate(**{"channel": "sms", "to": "+14155550100", "body": "hi", **fields})
    return message_create(request=request, content=content)


def test_a_message_to_an_opted_out_number_ends_suppressed_with_the_reason_and_is_never_sent(sms_outbox):
    suppression_add(channel="sms", address="+14155550100", reason=Reason.OPT_OUT, source="Twilio inbound reply: STOP")
    message = create()
    assert message.status == Status.QUEUED  # accepted: the API refuses nothing, the worker decides

    run_burst_worker()

    message.refresh_from_db()
    assert message.status == Status.SUPPRESSED
    assert message.last_error_code == "suppressed"
    assert message.last_error_message.startswith("Not sent: +14155550100 is on the sms suppression list: opted out")
    assert "Twilio inbound reply: STOP" in message.last_error_message
    assert sms_outbox == []
    # Checked before the claim: never handed to a provider, no attempt spent.
    assert list(message.events.values_list("to_status", flat=True)) == ["queued", "suppressed"]
    assert message.attempts == 0


def test_an_opt_out_that_arrives_after_queueing_is_still_honoured(sms_outbox):
    message = create()
    suppression_add(channel="sms", address="+14155550100", reason=Reason.OPT_OUT, source="test")
    run_burst_worker()
    assert Message.objects.get(pk=message.pk).status == Status.SUPPRESSED
    assert sms_outbox == []


def test_a_transactional_message_skips_an_opt_out_but_never_a_hard_bounce():
    suppression_add(channel="email", address="ada@example.com", reason=Reason.OPT_OUT, source="test")
    suppression_add(channel="email", address="bob@example.com", reason=Reason.HARD_BOUNCE, source="test")
    code_to_ada = create(channel="email", to="ada@example.com", subject="Code", body="1234", category="transactional")
    code_to_bob = create(channel="email", to="bob@example.com", subject="Code", body="1234", category="transactional")
    news_to_ada = create(channel="email", to="ada@example.com", subject="News", body="News")

    run_burst_worker()

    assert Message.objects.get(pk=code_to_ada.pk).status == Status.SENT
    assert Message.objects.get(pk=code_to_bob.pk).status == Status.SUPPRESSED
    assert Message.objects.get(pk=news_to_ada.pk).status == Status.SUPPRESSED
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_suppression_is_per_channel(sms_outbox):
    suppression_add(channel="whatsapp", address="+14155550100", reason=Reason.OPT_OUT, source="test")
    message = create()
    run_burst_worker()
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_one_query_finds_the_suppressions_of_a_whole_batch(django_assert_num_queries):
    suppression_add(channel="sms", address="+14155550100", reason=Reason.OPT_OUT, source="test")
    messages = [MessageFactory(recipient=f"+1415555{i:04d}") for i in range(99, 102)]
    with django_assert_num_queries(1):
        blocking = suppressions_blocking(messages)
    assert list(blocking) == [messages[1].pk]


def test_adding_twice_keeps_one_entry_and_a_stronger_reason_wins():
    first = suppression_add(channel="email", address="a@example.com", reason=Reason.OPT_OUT, source="page")
    again = suppression_add(channel="email", address="a@example.com", reason=Reason.OPT_OUT, source="other")
    assert again.pk == first.pk and again.source == "page"
    bounced = suppression_add(channel="email", address="a@example.com", reason=Reason.HARD_BOUNCE, source="postmark")
    assert (bounced.pk, bounced.reason, bounced.source) == (first.pk, Reason.HARD_BOUNCE, "postmark")
    weaker = suppression_add(channel="email", address="a@example.com", reason=Reason.OPT_OUT, source="page")
    assert weaker.reason == Reason.HARD_BOUNCE
    assert Suppression.objects.count() == 1


def test_lifting_removes_only_an_opt_out_unless_asked_for_any_reason():
    suppression_add(channel="sms", address="+14155550100", reason=Reason.HARD_BOUNCE, source="test")
    assert suppression_lift(channel="sms", address="+14155550100") is False
    assert suppression_lift(channel="sms", address="+14155550100", reasons=None) is True
    assert not Suppression.objects.exists()


def test_twilio_refusing_an_unsubscribed_number_puts_it_on_our_list(fake_twilio):
    message = create(to="+15005550004")  # Twilio's magic "unsubscribed recipient" number: error 21610
    run_burst_worker()
    message.refresh_from_db()
    assert (message.status, message.last_error_code) == (Status.FAILED, "21610")
    entry = Suppression.objects.get(channel="sms", address="+15005550004")
    assert (entry.reason, entry.source, entry.message_id) == (Reason.OPT_OUT, "Twilio error 21610", message.pk)


def test_email_addresses_are_listed_without_regard_to_case():
    suppression_add(channel="email", address="Ada@Example.com", reason=Reason.HARD_BOUNCE, source="test")
    message = create(channel="email", to="ADA@example.com", subject="Hi", body="x")
    run_burst_worker()
    assert Message.objects.get(pk=message.pk).status == Status.SUPPRESSED
    assert Suppression.objects.get().address == "ada@example.com"
