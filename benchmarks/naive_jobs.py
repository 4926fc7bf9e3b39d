"""The naive design the benchmark compares against: one plain django-rq job per message, one sync Twilio call."""

from django.conf import settings
from django.utils import timezone
from twilio.rest import Client

from deliveries.backends.sms.twilio import RebasedTwilioHttpClient
from deliveries.models import Message, Status


def noop() -> None:
    """A job that does nothing: the raw RQ job rate."""


def send_one(message_id: int) -> None:
    message = Message.objects.get(pk=message_id)
    client = Client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        http_client=RebasedTwilioHttpClient(settings.TWILIO_API_BASE_URL, timeout=10),
    )
    created = client.messages.create(to=message.recipient, from_=settings.TWILIO_FROM_NUMBER, body=message.body)
    Message.objects.filter(pk=message_id).update(
        status=Status.SENT, provider_message_id=created.sid, sent_at=timezone.now()
    )
