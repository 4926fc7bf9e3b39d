"""Meta's Messenger webhook: subscription check, signatures, delivery and read receipts, inbound messages."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import InboundMessage, Message, ProviderReceipt, Status, Suppression
from deliveries.services.feedback import receipts_apply_pending
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

URL = "/webhooks/messenger/"
SECRET = "app-secret"
PSID = "1234567890123456"
PAGE = "1000000000000001"


@pytest.fixture(autouse=True)
def messenger_settings(settings):
    settings.MESSENGER_APP_SECRET = SECRET
    settings.MESSENGER_VERIFY_TOKEN = "verify-me"


def signed_post(client, payload, *, secret=SECRET):
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(URL, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature)


def page_event(*messaging):
    return {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": list(messaging)}]}


def receipt(kind, *, watermark, mids=None, psid=PSID):
    details = {"watermark": watermark, **({"mids": mids} if mids is not None else {})}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": watermark, kind: details}


def sent_messenger_message(mid="m_1", **fields):
    defaults = {
        "channel": "messenger",
        "recipient": PSID,
        "status": Status.SENT,
        "provider": "messenger",
        "provider_message_id": mid,
        "attempts": 1,
        "sending_at": timezone.now() - timedelta(seconds=5),
        "sent_at": timezone.now() - timedelta(seconds=4),
    }
    return MessageFactory(**{**defaults, **fields})


def now_ms():
    return int(timezone.now().timestamp() * 1000)


def test_the_subscription_check_echoes_the_challenge_only_with_our_verify_token(client):
    ok = client.get(URL, {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"})
    wrong = client.get(URL, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert (ok.status_code, ok.content) == (200, b"1158201444")
    assert wrong.status_code == 403


def test_a_delivery_names_its_messages(client):
    message = sent_messenger_message()
    response = signed_post(client, page_event(receipt("delivery", watermark=now_ms(), mids=["m_1"])))
    assert (response.status_code, response.content) == (200, b"EVENT_RECEIVED")
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_a_read_watermark_marks_earlier_messages_read(client):
    earlier = sent_messenger_message("m_1")
    later = sent_messenger_message("m_2", sending_at=timezone.now() + timedelta(minutes=5))
    signed_post(client, page_event(receipt("read", watermark=now_ms())))
    earlier.refresh_from_db()
    later.refresh_from_db()
    assert (earlier.status, later.status) == (Status.DELIVERED, Status.SENT)
    assert earlier.read_at is not None and later.read_at is None


def test_an_unsigned_or_forged_event_is_refused(client):
    message = sent_messenger_message()
    payload = page_event(receipt("delivery", watermark=now_ms(), mids=["m_1"]))
    unsigned = client.post(URL, json.dumps(payload), content_type="application/json")
    forged = signed_post(client, payload, secret="not-the-app-secret")
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert Message.objects.get(pk=message.pk).status == Status.SENT


def test_without_an_app_secret_every_event_is_refused_and_changes_nothing(client, settings):
    settings.MESSENGER_APP_SECRET = ""
    message = sent_messenger_message()
    response = signed_post(client, page_event(receipt("delivery", watermark=now_ms(), mids=["m_1"])), secret="")
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == Status.SENT
    assert not ProviderReceipt.objects.exists()


def test_a_replayed_delivery_changes_nothing(client):
    message = sent_messenger_message()
    payload = page_event(receipt("delivery", watermark=now_ms(), mids=["m_1"]))
    signed_post(client, payload)
    events = message.events.count()
    signed_post(client, payload)
    assert message.events.count() == events


def test_a_delivery_for_an_id_the_worker_has_not_stored_yet_waits_and_is_applied_after(client):
    message = sent_messenger_message(mid="", status=Status.SENDING)
    signed_post(client, page_event(receipt("delivery", watermark=now_ms(), mids=["m_early"])))
    assert ProviderReceipt.objects.count() == 1
    assert Message.objects.get(pk=message.pk).status == Status.SENDING

    Message.objects.filter(pk=message.pk).update(provider_message_id="m_early", status=Status.SENT)
    assert receipts_apply_pending(provider="messenger", provider_message_ids=["m_early"]) == 1

    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    assert not ProviderReceipt.objects.exists()


def test_an_inbound_message_is_recorded_and_stop_opts_out(client):
    event = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "timestamp": 1,
        "message": {"mid": "m_in", "text": "stop"},
    }
    signed_post(client, page_event(event))
    signed_post(client, page_event(event))
    stored = InboundMessage.objects.get()
    assert (stored.channel, stored.sender, stored.keyword) == ("messenger", PSID, "stop")
    assert Suppression.objects.get().channel == "messenger"


def test_echoes_of_our_own_messages_are_ignored(client):
    event = {
        "sender": {"id": PAGE},
        "recipient": {"id": PSID},
        "message": {"mid": "m_echo", "text": "hi", "is_echo": True},
    }
    signed_post(client, page_event(event))
    assert not InboundMessage.objects.exists()
