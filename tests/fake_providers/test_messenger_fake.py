"""The fake Graph API must answer like Meta's Send API to our Messenger backend, and sign its webhooks like Meta."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
import requests

from deliveries.backends.base import OutgoingMessage
from deliveries.backends.messenger.graph import MessengerBackend
from deliveries.exceptions import PermanentDeliveryError, TransientDeliveryError
from fake_providers.messenger import UNAVAILABLE_PSID, UNKNOWN_PSID, FakeMessenger
from tests.support import CallbackReceiver, wait_for

PSID = "1234567890123456"


@pytest.fixture
def fake() -> Iterator[FakeMessenger]:
    messenger = FakeMessenger(seed=1)
    with messenger.start():
        yield messenger


def backend_for(fake: FakeMessenger, **options) -> MessengerBackend:
    defaults = {"access_token": fake.access_token, "app_secret": fake.app_secret, "base_url": fake.url}
    return MessengerBackend(**{**defaults, **options})


def outgoing(to: str = PSID, body: str = "Hello") -> OutgoingMessage:
    return OutgoingMessage(id=1, channel="messenger", recipient=to, body=body)


def test_a_message_is_accepted_with_a_message_id_and_recorded(fake):
    result = backend_for(fake).send(outgoing())
    [recorded] = fake.received
    assert result.provider_message_id == recorded["message_id"] and result.provider_message_id.startswith("m_")
    assert (recorded["recipient_id"], recorded["text"], recorded["messaging_type"]) == (PSID, "Hello", "UPDATE")
    assert recorded["appsecret_proof"] is True


def test_a_wrong_token_is_a_permanent_error_with_metas_code(fake):
    with pytest.raises(PermanentDeliveryError) as raised:
        backend_for(fake, access_token="wrong").send(outgoing())
    assert (raised.value.code, raised.value.status_code) == ("190", 400)
    assert raised.value.reason == "The page access token is invalid or has expired."


def test_a_wrong_appsecret_proof_is_refused(fake):
    with pytest.raises(PermanentDeliveryError) as raised:
        backend_for(fake, app_secret="not-the-secret").send(outgoing())
    assert raised.value.code == "100"


@pytest.mark.parametrize(
    ("psid", "code", "reason"),
    [
        (UNKNOWN_PSID, "2018001", "No person with this PSID has talked to the page."),
        (UNAVAILABLE_PSID, "1545041", "This person isn't available right now."),
    ],
)
def test_unreachable_people_are_permanent_errors(fake, psid, code, reason):
    with pytest.raises(PermanentDeliveryError) as raised:
        backend_for(fake).send(outgoing(to=psid))
    assert raised.value.code == code
    assert reason.rstrip(".") in raised.value.reason


def test_too_long_a_text_is_refused_as_meta_does(fake):
    with pytest.raises(PermanentDeliveryError) as raised:
        backend_for(fake).send(outgoing(body="x" * 2001))
    assert "2000" in raised.value.reason or raised.value.code == "100"


@pytest.mark.parametrize(("changes", "code"), [({"fail_429_rate": 1.0}, "613"), ({"down": True}, "2")])
def test_rate_limits_and_outages_are_transient(fake, changes, code):
    fake.configure(**changes)
    with pytest.raises(TransientDeliveryError) as raised:
        backend_for(fake).send(outgoing())
    assert raised.value.code == code


def test_an_unreachable_api_is_transient():
    backend = MessengerBackend(access_token="t", base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(TransientDeliveryError):
        backend.send(outgoing())


def test_delivery_and_read_events_are_signed_with_the_app_secret(fake):
    with CallbackReceiver() as app:
        fake.configure(webhook_url=f"{app.url}/webhooks/messenger/", outcome="read", callback_delay=0)
        result = backend_for(fake).send(outgoing())
        wait_for(lambda: len(app.requests) == 2 and fake.callbacks_in_flight == 0, timeout=5, message="events")
    delivery, read = (json.loads(request["body"]) for request in app.requests)
    assert delivery["object"] == "page"
    [event] = delivery["entry"][0]["messaging"]
    assert event["sender"] == {"id": PSID}
    assert event["delivery"]["mids"] == [result.provider_message_id]
    assert "mids" not in read["entry"][0]["messaging"][0]["read"]
    for request in app.requests:
        expected = hmac.new(fake.app_secret.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Hub-Signature-256"] == f"sha256={expected}"


def test_settings_are_set_over_http(fake):
    response = requests.post(f"{fake.url}/_fake/config", json={"outcome": "none"}, timeout=5)
    assert response.json()["outcome"] == "none"
    assert requests.post(f"{fake.url}/_fake/config", json={"outcome": "x"}, timeout=5).status_code == 400


def test_the_page_behind_the_token_is_read_with_get_me(fake):
    response = requests.get(f"{fake.url}/v19.0/me", params={"access_token": fake.access_token}, timeout=5)

    assert response.status_code == 200
    assert response.json() == {"name": "Tidings fake page", "id": fake.page_id}


def test_get_me_with_a_wrong_token_is_refused_as_graph_does_with_code_190(fake):
    response = requests.get(f"{fake.url}/v19.0/me", params={"access_token": "wrong"}, timeout=5)

    assert response.status_code == 400  # Graph answers an invalid token with 400, not 401
    assert response.json()["error"]["code"] == 190
    assert response.json()["error"]["type"] == "OAuthException"
