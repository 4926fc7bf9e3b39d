"""What each backend hands its provider, and how it reads the provider's errors."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from deliveries.backends import backend_path_for, get_backend
from deliveries.backends.base import BaseBackend, OutgoingMessage
from deliveries.backends.email.django_mail import EmailBackend
from deliveries.backends.messenger.graph import GraphApiRefusal, MessengerBackend
from deliveries.backends.sms.twilio import SmsBackend
from deliveries.backends.whatsapp.twilio import WhatsAppBackend
from deliveries.exceptions import BackendConfigurationError, PermanentDeliveryError, TransientDeliveryError
from deliveries.jobs import send_messages  # the RQ job, by its public name
from deliveries.models import Status
from deliveries.services.messages import message_create, message_request_validate

SERVICE = "MG" + "1" * 32
TWILIO = {"account_sid": "AC" + "0" * 32, "auth_token": "token", "base_url": "http://127.0.0.1:9"}


def outgoing(**fields) -> OutgoingMessage:
    return OutgoingMessage(**{"id": 42, "channel": "sms", "recipient": "+14155550100", "body": "Hi", **fields})


def test_every_twilio_message_asks_for_status_callbacks_with_our_id_and_attempt(settings):
    settings.PUBLIC_BASE_URL = "https://tidings.example.com"
    params = SmsBackend(**TWILIO, from_number="+15005550006").build_request(outgoing(attempt=3))
    assert params == {
        "to": "+14155550100",
        "body": "Hi",
        "from_": "+15005550006",
        "status_callback": "https://tidings.example.com/webhooks/twilio/status/?message=42&attempt=3",
    }


def test_a_messaging_service_wins_over_the_number_and_a_per_message_sender_wins_over_both():
    backend = SmsBackend(**TWILIO, from_number="+15005550006", messaging_service_sid=SERVICE)
    assert backend.build_request(outgoing())["messaging_service_sid"] == SERVICE
    assert backend.build_request(outgoing(sender="+15005550007"))["from_"] == "+15005550007"
    other_service = "MG" + "2" * 32
    by_service = backend.build_request(outgoing(sender=other_service))
    assert by_service["messaging_service_sid"] == other_service and "from_" not in by_service


def test_mms_media_urls_are_sent_as_media_url():
    params = SmsBackend(**TWILIO, from_number="+15005550006").build_request(
        outgoing(body="", media_urls=("https://example.com/a.png",))
    )
    assert params["media_url"] == ["https://example.com/a.png"]
    assert "body" not in params


def test_whatsapp_addresses_get_twilios_prefix_and_templates_their_content_sid():
    backend = WhatsAppBackend(**TWILIO, from_number="+14155238886")
    params = backend.build_request(
        outgoing(channel="whatsapp", body="", content_sid="HX" + "a" * 32, content_variables={"1": "Ada"})
    )
    assert (params["to"], params["from_"]) == ("whatsapp:+14155550100", "whatsapp:+14155238886")
    assert params["content_sid"] == "HX" + "a" * 32
    assert json.loads(params["content_variables"]) == {"1": "Ada"}


def test_whatsapp_needs_its_own_sender(settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC1", "token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"  # an SMS number is not a WhatsApp sender
    settings.TWILIO_WHATSAPP_FROM = settings.TWILIO_WHATSAPP_MESSAGING_SERVICE_SID = ""
    with pytest.raises(
        BackendConfigurationError, match="TWILIO_WHATSAPP_FROM or TWILIO_WHATSAPP_MESSAGING_SERVICE_SID"
    ):
        WhatsAppBackend()


def test_channels_find_their_backends_by_short_name_or_dotted_path(settings):
    settings.WHATSAPP_BACKEND = "twilio"
    settings.MESSENGER_BACKEND = "graph"
    assert backend_path_for("whatsapp") == "deliveries.backends.whatsapp.twilio.WhatsAppBackend"
    assert backend_path_for("messenger") == "deliveries.backends.messenger.graph.MessengerBackend"
    settings.MESSENGER_BACKEND = "deliveries.backends.sms.locmem.SmsBackend"
    assert get_backend("messenger").provider_name == "locmem"
    with pytest.raises(ValueError, match="No backend"):
        backend_path_for("pigeon")


def test_messenger_payload_follows_metas_shape(settings):
    backend = MessengerBackend(access_token="t", messaging_type="MESSAGE_TAG", message_tag="ACCOUNT_UPDATE")
    assert backend.url == "https://graph.facebook.com/v19.0/me/messages"
    assert backend.build_request(outgoing(channel="messenger", recipient="123")) == {
        "recipient": {"id": "123"},
        "messaging_type": "MESSAGE_TAG",
        "message": {"text": "Hi"},
        "tag": "ACCOUNT_UPDATE",
    }


def test_messenger_needs_a_token_and_a_tag_for_tagged_messages():
    with pytest.raises(BackendConfigurationError):
        MessengerBackend(access_token="")
    with pytest.raises(BackendConfigurationError):
        MessengerBackend(access_token="t", messaging_type="MESSAGE_TAG", message_tag="")


@pytest.mark.parametrize(
    ("status", "error", "kind", "code"),
    [
        (400, {"code": 10, "error_subcode": 2018278, "message": "outside window"}, PermanentDeliveryError, "2018278"),
        (400, {"code": 613, "message": "rate"}, TransientDeliveryError, "613"),
        (500, {"code": 1200, "message": "temporary"}, TransientDeliveryError, "1200"),
        (400, {"code": 100, "error_subcode": 2018001, "is_transient": False}, PermanentDeliveryError, "2018001"),
        (502, {}, TransientDeliveryError, "502"),
    ],
)
def test_graph_errors_are_sorted_into_transient_and_permanent(status, error, kind, code):
    result = MessengerBackend(access_token="t").error_for(GraphApiRefusal(status, error))
    assert isinstance(result, kind)
    assert result.code == code


def test_marketing_email_carries_one_click_unsubscribe_headers_and_transactional_does_not(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    backend = EmailBackend()
    marketing = backend.build_request(
        outgoing(channel="email", recipient="a@example.com", unsubscribe_url="https://t.example/unsubscribe/x/")
    )
    transactional = backend.build_request(
        outgoing(channel="email", recipient="a@example.com", category="transactional")
    )
    assert marketing.extra_headers == {
        "List-Unsubscribe": "<https://t.example/unsubscribe/x/>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert transactional.extra_headers == {}
    assert transactional.tags == ["tidings-transactional"]
    assert marketing.metadata == {"tidings_message_id": "42", "tidings_attempt": "1"}


class EchoBackend(BaseBackend):
    """A backend whose provider accepts anything but the recipient "refused", and answers at once."""

    provider_name = "echo"
    supports_async = True
    call_errors = (LookupError,)

    def build_request(self, message):
        return {"to": message.recipient}

    def post(self, request):
        if request["to"] == "refused":
            raise LookupError("no such recipient")
        return {"id": f"echo-{request['to']}"}

    async def post_async(self, request):
        return self.post(request)

    def parse_response(self, message, response):
        return self.result(message, response["id"], provider_status="accepted")

    def error_for(self, error):
        return PermanentDeliveryError(f"Refused: {error}", code="refused", provider=self.provider_name)


def run_coroutine(coroutine):
    """Run a coroutine that awaits nothing (EchoBackend's) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine awaited something")


def test_the_base_class_runs_the_same_hooks_for_send_and_send_async():
    backend = EchoBackend()
    assert run_coroutine(backend.send_async(outgoing())) == backend.send(outgoing())
    assert backend.send(outgoing()).provider_message_id == "echo-+14155550100"
    for send in (backend.send, lambda message: run_coroutine(backend.send_async(message))):
        with pytest.raises(PermanentDeliveryError, match="Refused: no such recipient") as raised:
            send(outgoing(recipient="refused"))
        assert isinstance(raised.value.__cause__, LookupError)


def test_an_error_the_backend_does_not_expect_is_not_translated():
    backend = EchoBackend()
    with pytest.raises(KeyError):
        backend.parse_response(outgoing(), {})


def test_a_misconfigured_backend_is_a_permanent_delivery_error_and_improperly_configured():
    error = BackendConfigurationError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
    assert isinstance(error, PermanentDeliveryError) and isinstance(error, ImproperlyConfigured)
    assert (error.code, error.transient) == ("configuration", False)


@pytest.mark.django_db(transaction=True)
def test_a_misconfigured_backends_messages_fail_at_once_with_the_reason_and_are_not_sent(settings):
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = ""
    request, content = message_request_validate(channel="sms", to="+14155550100", body="Hi")
    message = message_create(request=request, content=content)
    send_messages([message.pk])
    message.refresh_from_db()
    assert (message.status, message.last_error_code) == (Status.FAILED, "configuration")
    assert "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in message.last_error_message
