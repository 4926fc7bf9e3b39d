"""Reports that arrive after a person was erased (a bounce, a complaint, an unsubscribe, a Twilio receipt, a STOP
reply): they count, and leave nothing of the person, the whole database scanned as in test_person_erasure."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.management import call_command

from campaigns.models import Contact
from deliveries.models import ERASED, InboundMessage, Message, Status, Suppression
from deliveries.services.suppression_hashes import suppression_hash
from fake_providers.postmark import tracking_event
from tests.campaigns.test_person_erasure import PERSON, quotes_of, reply, rows_quoting, status_callback
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "test-auth-token"
EMAIL = PERSON["email"].lower()


@pytest.fixture(autouse=True)
def webhooks(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "http://testserver"
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # the ESP whose webhook routes exist
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "tidings:webhook-secret"}


def sent(channel: str, recipient: str, provider: str, n: int) -> Message:
    return MessageFactory(
        channel=channel, recipient=recipient, status=Status.SENT, provider=provider, provider_message_id=f"pm-{n}"
    )


def postmark(client, record_type: str, message: Message) -> None:
    """A Postmark report about `message` whose texts quote the address, as real bounce diagnostics do."""
    recorded = {
        "MessageID": message.provider_message_id,
        "from": "news@tidings.test",
        "metadata": {"tidings_message_id": str(message.pk), "tidings_attempt": str(message.attempts)},
    }
    event = tracking_event(record_type, recorded, EMAIL)
    if "Description" in event:
        event["Description"] = f"<{EMAIL}>: Recipient address rejected: {PERSON['name']} left"
        event["Details"] = f"smtp;550 5.1.1 <{EMAIL}>: user unknown"
    auth = "Basic " + base64.b64encode(b"tidings:webhook-secret").decode()
    response = client.post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(event),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == 200, response.content


def erase_person() -> None:
    Contact.objects.create(name=PERSON["name"], phone=PERSON["phone"], email=EMAIL)
    call_command("erase_person", phone=PERSON["phone"])


def test_a_late_bounce_and_a_failed_receipt_keep_only_codes_and_a_hashed_entry(client):
    email = sent("email", EMAIL, "postmark", 1)
    sms = sent("sms", PERSON["phone"], "twilio", 2)
    erase_person()

    postmark(client, "Bounce", Message.objects.get(pk=email.pk))
    # An error code Twilio's table does not know: the reason is Twilio's own text, which quotes the number.
    status_callback(
        client,
        Message.objects.get(pk=sms.pk),
        "undelivered",
        ErrorCode="30099",
        ErrorMessage=f"Message to {PERSON['phone']} could not be routed",
    )

    assert rows_quoting(quotes_of(PERSON)) == []
    email.refresh_from_db()
    sms.refresh_from_db()
    assert (email.status, email.last_error_code) == (Status.UNDELIVERED, "1")
    assert (sms.status, sms.last_error_code) == (Status.UNDELIVERED, "30099")
    entry = Suppression.objects.get()
    assert (entry.channel, entry.address, entry.address_hash) == ("email", None, suppression_hash(EMAIL))
    assert (entry.reason, entry.detail, entry.message_id) == ("hard_bounce", "", None)


def test_a_late_complaint_unsubscribe_and_stop_strengthen_the_hashed_entries_and_quote_nobody(client):
    first, second = sent("email", EMAIL, "postmark", 1), sent("email", EMAIL, "postmark", 2)
    Suppression.objects.create(channel="email", address=EMAIL, reason="opt_out", detail=f"Unsubscribed: {EMAIL}")
    Suppression.objects.create(channel="sms", address=PERSON["phone"], reason="opt_out", detail="Replied 'STOP'")
    erase_person()

    postmark(client, "SpamComplaint", Message.objects.get(pk=first.pk))
    postmark(client, "Bounce", Message.objects.get(pk=second.pk))
    postmark(client, "SubscriptionChange", Message.objects.get(pk=first.pk))
    reply(client, PERSON, "STOP", "SM" + "7" * 32)

    assert rows_quoting(quotes_of(PERSON)) == []
    entries = Suppression.objects.order_by("channel").values_list("channel", "address", "reason", "detail", "message")
    assert list(entries) == [("email", None, "hard_bounce", "", None), ("sms", None, "opt_out", "", None)]
    stop = InboundMessage.objects.get()
    assert (stop.sender, stop.keyword, stop.body, stop.data) == (ERASED, "stop", "", {})
