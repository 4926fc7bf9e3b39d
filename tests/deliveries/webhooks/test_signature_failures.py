"""Webhook requests refused for their signature are counted per minute in Redis, for the alerts."""

import base64
import hashlib
import hmac
import json

import pytest
from django.test import override_settings

from deliveries.webhooks.signature_failures import signature_failure_record, signature_failures_since
from tests.support import twilio_signed_post

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=1"
DEAD_QUEUES = {name: {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.TWILIO_AUTH_TOKEN = "twilio-token"
    settings.MESSENGER_APP_SECRET = "messenger-secret"
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "tidings:secret"}


def basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


def test_each_webhooks_refusals_are_counted_and_accepted_requests_are_not(client):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert twilio_signed_post(client, "/webhooks/twilio/status/", params, auth_token="twilio-token").status_code == 204
    body = b'{"object": "page", "entry": []}'
    good = "sha256=" + hmac.new(b"messenger-secret", body, hashlib.sha256).hexdigest()
    messenger = client.post(
        "/webhooks/messenger/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=good
    )
    assert messenger.status_code == 200
    assert signature_failures_since(minutes=5) == 0

    refused = [
        twilio_signed_post(client, "/webhooks/twilio/status/", params, auth_token="forged"),
        client.post("/webhooks/twilio/inbound/", {"Body": "STOP"}),  # no signature at all
        client.post("/webhooks/messenger/", body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=0"),
        client.post(
            "/webhooks/anymail/postmark/tracking/",
            json.dumps({"RecordType": "Delivery"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic("tidings:wrong"),
        ),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403, 403]
    assert signature_failures_since(minutes=5) == 4


def test_counts_are_per_minute_and_old_minutes_fall_out_of_the_window():
    now = 1_800_000_000.0
    signature_failure_record(now=now - 10 * 60)
    signature_failure_record(now=now - 4 * 60)
    signature_failure_record(now=now)
    assert signature_failures_since(minutes=5, now=now) == 2
    assert signature_failures_since(minutes=11, now=now) == 3


@override_settings(RQ_QUEUES=DEAD_QUEUES)
def test_with_redis_down_a_forged_request_is_still_refused(client, caplog):
    response = client.post("/webhooks/twilio/status/", {"MessageSid": "SM1"}, HTTP_X_TWILIO_SIGNATURE="forged")
    assert response.status_code == 403
    assert "Could not count a webhook signature failure in Redis" in caplog.text
