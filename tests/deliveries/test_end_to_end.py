"""From the API to the provider: the real twilio client and anymail's Postmark backend, against fake servers that
speak their wire formats, with a real RQ worker against the real Redis."""

import pytest

from deliveries.models import Message, Status
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_sms_and_an_email_posted_to_the_api_are_sent_by_a_worker(api, fake_twilio, fake_postmark):
    sms = api.post(
        "/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234"}, format="json"
    )
    email = api.post(
        "/api/v1/messages/",
        {"channel": "email", "to": "ada@example.com", "subject": "Welcome", "body": "Hello", "html_body": "<p>Hi</p>"},
        format="json",
    )
    assert sms.status_code == email.status_code == 201

    run_burst_worker()

    sms_row = Message.objects.get(pk=sms.json()["id"])
    assert sms_row.status == Status.SENT
    assert sms_row.provider == "twilio"
    [received_sms] = fake_twilio.received
    assert sms_row.provider_message_id == received_sms["sid"]
    assert received_sms["to"] == "+14155550100"
    assert received_sms["from"] == "+15005550006"
    assert received_sms["body"] == "Your code is 1234"

    email_row = Message.objects.get(pk=email.json()["id"])
    assert email_row.status == Status.SENT, email_row.last_error_message
    assert email_row.provider == "postmark"
    [received_email] = fake_postmark.received
    assert email_row.provider_message_id == received_email["MessageID"]
    assert received_email["subject"] == "Welcome"
    assert received_email["metadata"] == {"tidings_message_id": str(email_row.pk), "tidings_attempt": "1"}

    detail = api.get(f"/api/v1/messages/{sms_row.pk}/").json()
    assert [e["to_status"] for e in detail["events"]] == ["queued", "sending", "sent"]


def test_an_invalid_number_fails_at_once_with_twilios_code_and_reason(api, fake_twilio):
    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+15005550001", "body": "x"}, format="json")
    run_burst_worker()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == Status.FAILED
    assert message.last_error_code == "21211"
    assert message.last_error_message == "The 'To' number is not a valid phone number."
    assert message.attempts == 1
    assert fake_twilio.request_count == 1


def test_a_provider_error_is_retried_then_sent(api, fake_twilio, settings):
    settings.SEND_RETRY_BACKOFF = 0
    fake_twilio.down = True
    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "x"}, format="json")
    run_burst_worker()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == Status.SCHEDULED
    assert message.last_error_code == "20503"
    fake_twilio.down = False

    from deliveries.services.dispatch import dispatch_due_messages

    assert dispatch_due_messages() == 1
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 2
    assert len(fake_twilio.received) == 1
