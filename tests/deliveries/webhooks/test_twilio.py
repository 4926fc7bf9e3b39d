"""Twilio's status callbacks and inbound messages, signed the way Twilio signs them."""

import pytest
from twilio.request_validator import RequestValidator

from deliveries.backends.base import SendResult
from deliveries.models import InboundMessage, Message, MessageEvent, Status, Suppression
from deliveries.sending.claims import claim_messages
from deliveries.sending.outcomes import record_accepted_and_claim
from tests.factories import MessageFactory
from tests.support import twilio_signed_post

pytestmark = pytest.mark.django_db

TOKEN = "test-auth-token"
STATUS = "/webhooks/twilio/status/"
INBOUND = "/webhooks/twilio/inbound/"
SID = "SM" + "a" * 32


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = "http://testserver"


def sent_message(**fields) -> Message:
    defaults = {"status": Status.SENT, "provider": "twilio", "provider_message_id": SID, "attempts": 1}
    return MessageFactory(**{**defaults, "recipient": "+14155550100", **fields})


def callback(client, message, status, *, attempt=1, **extra):
    params = {
        "MessageSid": SID,
        "SmsSid": SID,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "To": message.recipient,
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
        **extra,
    }
    return twilio_signed_post(client, f"{STATUS}?message={message.pk}&attempt={attempt}", params, auth_token=TOKEN)


def test_a_delivered_callback_moves_a_sent_message_to_delivered_with_the_providers_event(client):
    message = sent_message()

    response = callback(client, message, "delivered")

    assert response.status_code == 204
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.delivered_at is not None
    events = list(message.events.values_list("kind", "from_status", "to_status"))
    assert events == [("provider", "", ""), ("status", "sent", "delivered")]


def test_undelivered_with_30006_keeps_twilios_code_and_a_readable_reason(client):
    message = sent_message()

    callback(client, message, "undelivered", ErrorCode="30006")

    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert message.last_error_code == "30006"
    assert message.last_error_message == "The number is a landline or cannot receive SMS."
    status_event = message.events.get(kind="status")
    assert status_event.code == "30006"
    assert "landline" in status_event.detail


def test_a_failed_callback_fails_the_message_with_the_reason(client):
    message = sent_message()
    callback(client, message, "failed", ErrorCode="30008")
    message.refresh_from_db()
    assert (message.status, message.last_error_code) == (Status.FAILED, "30008")
    assert message.last_error_message == "Unknown error at the carrier."


def test_a_callback_without_a_signature_is_refused_and_changes_nothing(client):
    message = sent_message()
    response = client.post(f"{STATUS}?message={message.pk}&attempt=1", {"MessageSid": SID, "MessageStatus": "failed"})
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not MessageEvent.objects.exists()


def test_a_callback_signed_with_another_token_is_refused(client):
    message = sent_message()
    params = {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "30006"}
    path = f"{STATUS}?message={message.pk}&attempt=1"
    response = twilio_signed_post(client, path, params, auth_token="not-our-token")
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_a_signed_callback_with_altered_parameters_is_refused(client):
    message = sent_message()
    path = f"{STATUS}?message={message.pk}&attempt=1"
    good = {"MessageSid": SID, "MessageStatus": "delivered"}
    signature = RequestValidator(TOKEN).compute_signature("http://testserver" + path, good)
    forged = client.post(path, {**good, "MessageStatus": "failed"}, HTTP_X_TWILIO_SIGNATURE=signature)
    moved_elsewhere = client.post(
        f"{STATUS}?message={message.pk + 1}&attempt=1", good, HTTP_X_TWILIO_SIGNATURE=signature
    )
    assert (forged.status_code, moved_elsewhere.status_code) == (403, 403)
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_without_an_auth_token_every_callback_is_refused(client, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    message = sent_message()
    response = twilio_signed_post(
        client, f"{STATUS}?message={message.pk}&attempt=1", {"MessageSid": SID, "MessageStatus": "x"}, auth_token=""
    )
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not MessageEvent.objects.exists()


def test_without_an_auth_token_an_inbound_stop_is_refused_and_suppresses_nobody(client, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    params = {"MessageSid": "SM1", "From": "+14155550100", "To": "+15005550006", "Body": "STOP"}
    response = twilio_signed_post(client, INBOUND, params, auth_token="")
    assert response.status_code == 403
    assert not Suppression.objects.exists()
    assert not InboundMessage.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(STATUS).status_code == 405


def test_a_replayed_callback_changes_nothing(client):
    message = sent_message()
    first = callback(client, message, "undelivered", ErrorCode="30006")
    events_after_first = message.events.count()
    replay = callback(client, message, "undelivered", ErrorCode="30006")
    assert (first.status_code, replay.status_code) == (204, 204)
    assert message.events.count() == events_after_first
    assert Message.objects.get(pk=message.pk).status == Status.UNDELIVERED


def test_statuses_never_go_backwards_and_a_late_sent_is_only_an_event(client):
    message = sent_message()
    callback(client, message, "delivered")
    callback(client, message, "sent")
    callback(client, message, "undelivered", ErrorCode="30003")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.last_error_code == ""
    assert message.events.filter(kind="provider").count() == 3
    assert message.events.filter(kind="status").count() == 1


def test_a_callback_about_an_earlier_attempt_is_recorded_but_changes_nothing(client):
    message = sent_message(attempts=2)
    callback(client, message, "failed", attempt=1, ErrorCode="30008")
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert "earlier attempt" in message.events.get().detail


def test_delivered_arriving_before_the_worker_recorded_sent_wins_and_the_sid_is_kept(client):
    """Twilio can call back before our worker has written `sent` (it writes after the HTTP answer)."""
    queued = MessageFactory(status=Status.QUEUED, recipient="+14155550100")
    [message] = claim_messages([queued.pk])

    callback(client, message, "sent")
    callback(client, message, "delivered")
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED

    # Now the worker records what the provider answered; it must not move the message back.
    accepted = SendResult(message_id=message.pk, provider="twilio", provider_message_id=SID)
    assert record_accepted_and_claim([(message, accepted)], []).sent_ids == []
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.provider_message_id == SID
    assert message.sent_at is not None and message.lease_expires_at is None
    assert list(message.events.filter(kind="status").values_list("to_status", flat=True)) == [
        "sending",
        "sent",
        "delivered",
    ]


def test_a_callback_without_our_id_in_the_url_finds_the_message_by_its_sid(client):
    message = sent_message()
    twilio_signed_post(client, STATUS, {"MessageSid": SID, "MessageStatus": "delivered"}, auth_token=TOKEN)
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(client, settings):
    settings.PUBLIC_BASE_URL = "https://tidings.example.com"
    message = sent_message()
    path = f"{STATUS}?message={message.pk}&attempt=1"
    params = {"MessageSid": SID, "MessageStatus": "delivered"}
    # Twilio called the public HTTPS URL; the request reaches Django as plain HTTP on another host.
    response = twilio_signed_post(client, path, params, auth_token=TOKEN, base_url="https://tidings.example.com")
    assert response.status_code == 204
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_the_forwarded_host_is_accepted_when_django_is_told_to_trust_it(client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # not what Twilio called
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    message = sent_message()
    path = f"{STATUS}?message={message.pk}&attempt=1"
    params = {"MessageSid": SID, "MessageStatus": "delivered"}
    signature = RequestValidator(TOKEN).compute_signature("https://hooks.example.com" + path, params)
    response = client.post(
        path,
        params,
        HTTP_X_TWILIO_SIGNATURE=signature,
        HTTP_X_FORWARDED_HOST="hooks.example.com",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert response.status_code == 204


def inbound(client, body, *, sender="+14155550100", sid="SM" + "b" * 32, **extra):
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    return twilio_signed_post(client, INBOUND, params, auth_token=TOKEN)


@pytest.mark.parametrize("word", ["STOP", "stop", " Unsubscribe ", "CANCEL", "end", "Quit", "STOPALL"])
def test_an_opt_out_keyword_suppresses_the_number_and_records_the_message(client, word):
    response = inbound(client, word)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    entry = Suppression.objects.get(channel="sms", address="+14155550100")
    assert entry.reason == Suppression.Reason.OPT_OUT
    assert entry.source.startswith("Twilio inbound reply")
    stored = InboundMessage.objects.get()
    assert (stored.keyword, stored.body, stored.sender) == ("stop", word, "+14155550100")


def test_start_and_unstop_lift_an_opt_out_but_not_a_manual_entry(client):
    inbound(client, "STOP", sid="SM1")
    inbound(client, "START", sid="SM2")
    assert not Suppression.objects.exists()
    inbound(client, "STOP", sid="SM3")
    inbound(client, "unstop", sid="SM4")
    assert not Suppression.objects.exists()
    Suppression.objects.create(channel="sms", address="+14155550100", reason=Suppression.Reason.MANUAL)
    inbound(client, "START", sid="SM5")
    assert Suppression.objects.get().reason == Suppression.Reason.MANUAL


def test_a_sentence_containing_stop_is_not_an_opt_out(client):
    inbound(client, "please don't stop sending these")
    assert not Suppression.objects.exists()
    assert InboundMessage.objects.get().keyword == ""


def test_twilios_advanced_opt_out_type_is_trusted(client):
    inbound(client, "ARRET", OptOutType="STOP")
    assert Suppression.objects.filter(address="+14155550100").exists()


def test_help_answers_with_the_configured_reply(client, settings):
    settings.INBOUND_HELP_REPLY = "Tidings alerts: reply STOP to stop. <help@example.com>"
    response = inbound(client, "HELP")
    assert response.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Message>Tidings alerts: reply STOP to stop. &lt;help@example.com&gt;</Message></Response>"
    )
    assert InboundMessage.objects.get().keyword == "help"
    assert not Suppression.objects.exists()


def test_a_replayed_stop_after_start_does_not_opt_out_again(client):
    inbound(client, "STOP", sid="SM1")
    inbound(client, "START", sid="SM2")
    inbound(client, "STOP", sid="SM1")
    assert not Suppression.objects.exists()
    assert InboundMessage.objects.count() == 2


def test_a_whatsapp_stop_suppresses_whatsapp_only(client):
    inbound(client, "STOP", sender="whatsapp:+14155550100", To="whatsapp:+14155238886")
    assert list(Suppression.objects.values_list("channel", "address")) == [("whatsapp", "+14155550100")]


def test_an_unsigned_inbound_message_is_refused(client):
    response = client.post(INBOUND, {"MessageSid": "SM1", "From": "+14155550100", "Body": "STOP"})
    assert response.status_code == 403
    assert not Suppression.objects.exists()
    assert not InboundMessage.objects.exists()


def test_inbound_media_urls_are_kept(client):
    inbound(client, "", NumMedia="2", MediaUrl0="https://api.twilio.com/a", MediaUrl1="https://api.twilio.com/b")
    assert InboundMessage.objects.get().media_urls == ["https://api.twilio.com/a", "https://api.twilio.com/b"]


def test_a_signed_stop_without_a_sender_is_kept_and_suppresses_nobody(client):
    response = inbound(client, "STOP", sender="")
    assert response.status_code == 200
    assert InboundMessage.objects.get().keyword == "stop"
    assert not Suppression.objects.exists()
