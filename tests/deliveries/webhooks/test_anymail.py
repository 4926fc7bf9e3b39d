"""Postmark's tracking webhooks through anymail: statuses, the suppression list, opens and clicks."""

import base64
import json

import pytest

from deliveries.models import Message, Status, Suppression
from fake_providers.postmark import tracking_event
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

URL = "/webhooks/anymail/postmark/tracking/"
SECRET = "tidings:webhook-secret"
MESSAGE_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def email_message(**fields) -> Message:
    defaults = {
        "channel": "email",
        "recipient": "ada@example.com",
        "subject": "News",
        "status": Status.SENT,
        "provider": "postmark",
        "provider_message_id": MESSAGE_ID,
        "attempts": 1,
    }
    return MessageFactory(**{**defaults, **fields})


def event_for(message: Message, record_type: str, **extra) -> dict:
    recorded = {
        "MessageID": message.provider_message_id,
        "metadata": {"tidings_message_id": str(message.pk), "tidings_attempt": str(message.attempts)},
        "tag": "tidings-marketing",
        "from": "Tidings <tidings@example.com>",
        "subject": message.subject,
    }
    return tracking_event(record_type, recorded, message.recipient, **extra)


def post(client, payload: dict, auth: str | None = SECRET, url: str = URL):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    return client.post(url, json.dumps(payload), content_type="application/json", **headers)


def test_a_delivery_moves_the_message_to_delivered(client):
    message = email_message()
    assert post(client, event_for(message, "Delivery")).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert list(message.events.values_list("kind", "to_status")) == [("provider", ""), ("status", "delivered")]


def test_a_postmark_payload_from_its_documentation_is_understood(client):
    """The Delivery example from https://postmarkapp.com/developer/webhooks/delivery-webhook, with our metadata."""
    message = email_message(recipient="john@example.com")
    payload = {
        "MessageID": MESSAGE_ID,
        "Recipient": "john@example.com",
        "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Tag": "welcome-email",
        "ServerID": 23,
        "Metadata": {"tidings_message_id": str(message.pk), "tidings_attempt": "1"},
        "RecordType": "Delivery",
        "MessageStream": "outbound",
    }
    post(client, payload)
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_a_hard_bounce_marks_the_message_undelivered_and_suppresses_the_address(client):
    message = email_message()
    post(client, event_for(message, "Bounce"))
    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert message.last_error_code == "1"
    assert "unable to deliver" in message.last_error_message
    entry = Suppression.objects.get(channel="email", address="ada@example.com")
    assert (entry.reason, entry.source, entry.message_id) == ("hard_bounce", "Postmark bounced", message.pk)


def test_a_soft_bounce_suppresses_nothing_and_leaves_the_status(client):
    message = email_message()
    post(client, event_for(message, "SoftBounce"))
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not Suppression.objects.exists()


def test_a_spam_complaint_suppresses_the_address_as_a_complaint(client):
    message = email_message()
    post(client, event_for(message, "SpamComplaint"))
    assert Suppression.objects.get().reason == "complaint"
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_an_unsubscribe_at_postmark_is_an_opt_out(client):
    message = email_message()
    post(client, event_for(message, "SubscriptionChange"))
    assert Suppression.objects.get().reason == "opt_out"


def test_a_resubscribe_lifts_the_opt_out(client):
    message = email_message()
    post(client, event_for(message, "SubscriptionChange"))
    post(client, {**event_for(message, "SubscriptionChange"), "SuppressSending": False})
    assert not Suppression.objects.exists()


def test_opens_and_clicks_are_counted_once_per_event_with_the_first_time_kept(client):
    message = email_message()
    first_open = event_for(message, "Open", first=True)
    second_open = {**event_for(message, "Open"), "ReceivedAt": "2030-01-01T10:00:00Z"}
    click = event_for(message, "Click", url="https://example.com/offer")

    for payload in (first_open, first_open, second_open, click, click):
        assert post(client, payload).status_code == 200

    message.refresh_from_db()
    assert (message.opens_count, message.clicks_count) == (2, 1)
    assert message.first_opened_at is not None and message.first_opened_at.year != 2030
    assert message.first_clicked_at is not None
    assert message.status == Status.DELIVERED  # an open means it arrived
    click_event = message.events.get(kind="engagement", detail__contains="clicked")
    assert "https://example.com/offer" in click_event.detail


def test_a_replayed_bounce_changes_nothing(client):
    message = email_message()
    bounce = event_for(message, "Bounce")
    post(client, bounce)
    events = message.events.count()
    Suppression.objects.all().delete()  # a person lifted it meanwhile
    post(client, bounce)
    assert message.events.count() == events
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("auth", [None, "tidings:wrong", "someone:else"])
def test_a_webhook_without_the_right_credentials_is_refused_and_changes_nothing(client, auth):
    message = email_message()
    response = post(client, event_for(message, "Bounce"), auth=auth)
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not Suppression.objects.exists()
    assert not message.events.exists()


def test_an_event_about_an_earlier_attempt_changes_nothing(client):
    message = email_message(attempts=2)
    post(
        client,
        {**event_for(message, "Bounce"), "Metadata": {"tidings_message_id": str(message.pk), "tidings_attempt": "1"}},
    )
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_a_delivery_before_the_worker_recorded_the_send_is_applied(client):
    message = email_message(status=Status.SENDING, provider="", provider_message_id="")
    post(client, {**event_for(message, "Delivery"), "MessageID": MESSAGE_ID})
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, MESSAGE_ID)


def test_a_bounce_for_a_message_we_do_not_know_still_suppresses_the_address(client):
    payload = tracking_event("Bounce", {"MessageID": "other", "from": "x@example.com"}, "Stranger@Example.COM")
    assert post(client, payload).status_code == 200
    assert Suppression.objects.get().address == "stranger@example.com"


@pytest.mark.parametrize("auth", [None, SECRET, ":"])
def test_without_a_webhook_secret_a_forged_bounce_is_refused_and_suppresses_nobody(client, settings, auth):
    """Attack 2 of issue 20: with ANYMAIL_WEBHOOK_SECRET empty, anymail itself would accept anything."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    message = email_message()
    response = post(client, event_for(message, "Bounce"), auth=auth)
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not Suppression.objects.exists()
    assert not message.events.exists()


def test_without_a_webhook_secret_a_forged_resubscribe_keeps_the_opt_out(client, settings):
    message = email_message()
    post(client, event_for(message, "SubscriptionChange"))
    assert Suppression.objects.get().reason == "opt_out"

    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    resubscribe = {**event_for(message, "SubscriptionChange"), "SuppressSending": False}
    assert post(client, resubscribe, auth=None).status_code == 403
    assert Suppression.objects.get().reason == "opt_out"


def test_without_a_webhook_secret_the_inbound_route_is_refused_too(client, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    response = post(client, {"From": "x@example.com"}, auth=None, url="/webhooks/anymail/postmark/inbound/")
    assert response.status_code == 403


@pytest.mark.parametrize("esp", ["mailgun", "sendgrid", "amazon_ses", "mandrill"])
def test_another_esps_routes_are_not_there_when_postmark_is_configured(client, esp):
    message = email_message()
    response = post(client, event_for(message, "Bounce"), url=f"/webhooks/anymail/{esp}/tracking/")
    assert response.status_code == 404
    assert not Suppression.objects.exists()


def test_no_esp_route_answers_when_email_does_not_go_through_anymail(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    message = email_message()
    assert post(client, event_for(message, "Bounce")).status_code == 404
    assert not Suppression.objects.exists()


def test_the_configured_esp_follows_email_backend(settings):
    from deliveries.webhooks.anymail import configured_esp

    for backend, esp in [
        ("anymail.backends.postmark.EmailBackend", "postmark"),
        ("anymail.backends.amazon_ses.EmailBackend", "amazon_ses"),
        ("anymail.backends.test.EmailBackend", ""),
        ("django.core.mail.backends.console.EmailBackend", ""),
    ]:
        settings.EMAIL_BACKEND = backend
        assert configured_esp() == esp


def test_during_a_rotation_both_webhook_secrets_are_accepted(client, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ["tidings:old-secret", "tidings:new-secret"]}
    for auth in ("tidings:old-secret", "tidings:new-secret"):
        assert post(client, event_for(email_message(), "Delivery"), auth=auth).status_code == 200
    assert post(client, event_for(email_message(), "Delivery"), auth=SECRET).status_code == 403
