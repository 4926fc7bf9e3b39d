"""The feedback loop end to end: the API, a real RQ worker, the real provider clients against the fake providers,
and the fakes calling back a live Django server exactly as the providers call production."""

import pytest
import requests

from deliveries.models import Message, Status, Suppression
from tests.support import run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def post_message(api, **fields) -> Message:
    response = api.post("/api/v1/messages/", fields, format="json")
    assert response.status_code == 201, response.json()
    return Message.objects.get(pk=response.json()["id"])


def wait_for_status(message: Message, status: str, timeout: float = 10) -> Message:
    def reached():
        message.refresh_from_db()
        return message.status == status

    try:
        wait_for(reached, timeout=timeout, message=f"message {message.pk} to be {status}")
    except AssertionError as error:
        timeline = list(message.events.values_list("to_status", "detail"))
        raise AssertionError(f"{error}: it is {message.status}, timeline {timeline}") from None
    return message


def wait_for_callbacks(fake, count: int, timeout: float = 10) -> list[dict]:
    wait_for(
        lambda: len(fake.callbacks) >= count and fake.callbacks_in_flight == 0,
        timeout=timeout,
        message=f"{count} callbacks from the fake {fake.display_name}",
    )
    return fake.callbacks


def test_an_sms_goes_sent_then_delivered_with_both_provider_events(api, live_callbacks, fake_twilio):
    message = post_message(api, channel="sms", to="+14155550100", body="Your code is 1234", category="transactional")

    run_burst_worker()

    wait_for_status(message, Status.DELIVERED)
    callbacks = wait_for_callbacks(fake_twilio, 2)
    assert [(c["message_status"], c["status"]) for c in callbacks] == [("sent", 204), ("delivered", 204)]
    [received] = fake_twilio.received
    assert received["status_callback"] == f"{live_callbacks.url}/webhooks/twilio/status/?message={message.pk}&attempt=1"
    assert message.provider_message_id == received["sid"]
    provider_events = list(message.events.filter(kind="provider").values_list("detail", flat=True))
    assert provider_events == ["Twilio: sent", "Twilio: delivered"]
    assert list(message.events.filter(kind="status").values_list("to_status", flat=True)) == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]


def test_undelivered_with_30006_shows_the_readable_reason(api, live_callbacks, fake_twilio):
    fake_twilio.configure(outcome="undelivered", error_code=30006)
    message = post_message(api, channel="sms", to="+14155550100", body="Hello")

    run_burst_worker()

    wait_for_status(message, Status.UNDELIVERED)
    assert message.last_error_code == "30006"
    assert message.last_error_message == "The number is a landline or cannot receive SMS."
    detail = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert detail["last_error_message"] == "The number is a landline or cannot receive SMS."
    assert detail["events"][-1]["detail"] == (
        "Undelivered: The number is a landline or cannot receive SMS. (Twilio error 30006)"
    )


def test_a_forged_callback_is_refused_and_a_replayed_one_changes_nothing(api, live_callbacks, fake_twilio):
    message = post_message(api, channel="sms", to="+14155550100", body="Hello")
    run_burst_worker()
    wait_for_status(message, Status.DELIVERED)
    [sent, delivered] = wait_for_callbacks(fake_twilio, 2)
    events_before = message.events.count()

    forged_body = delivered["body"].replace("delivered", "failed") + "&ErrorCode=30007"
    forged = requests.post(delivered["url"], data=forged_body, headers=delivered["headers"], timeout=5)
    unsigned_headers = {k: v for k, v in delivered["headers"].items() if k != "X-Twilio-Signature"}
    unsigned = requests.post(delivered["url"], data=forged_body, headers=unsigned_headers, timeout=5)
    replayed = [requests.post(c["url"], data=c["body"], headers=c["headers"], timeout=5) for c in (sent, delivered)]

    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert [r.status_code for r in replayed] == [204, 204]
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.last_error_code == ""
    assert message.events.count() == events_before


def test_stop_suppresses_the_next_message_and_start_lets_messages_out_again(api, live_callbacks, fake_twilio):
    inbound_url = f"{live_callbacks.url}/webhooks/twilio/inbound/"
    stop = fake_twilio.send_inbound(inbound_url, from_="+14155550100", to="+15005550006", body="STOP")
    assert stop["status"] == 200

    stopped = post_message(api, channel="sms", to="+14155550100", body="Spring sale!")
    run_burst_worker()
    stopped.refresh_from_db()
    assert stopped.status == Status.SUPPRESSED
    assert "opted out" in stopped.last_error_message
    assert fake_twilio.received == []

    start = fake_twilio.send_inbound(inbound_url, from_="+14155550100", to="+15005550006", body="START")
    assert start["status"] == 200
    assert not Suppression.objects.exists()

    again = post_message(api, channel="sms", to="+14155550100", body="Welcome back")
    run_burst_worker()
    wait_for_status(again, Status.DELIVERED)
    assert [m["body"] for m in fake_twilio.received] == ["Welcome back"]


def test_an_email_bounce_suppresses_the_address(api, live_callbacks, fake_postmark):
    fake_postmark.configure(outcome="bounce")
    bounced = post_message(api, channel="email", to="ada@example.com", subject="News", body="Hello")
    run_burst_worker()

    wait_for_status(bounced, Status.UNDELIVERED)
    assert Suppression.objects.get(channel="email", address="ada@example.com").reason == "hard_bounce"

    # Even a transactional email never goes to a hard bounce.
    code = post_message(
        api, channel="email", to="ada@example.com", subject="Code", body="1234", category="transactional"
    )
    run_burst_worker()
    code.refresh_from_db()
    assert code.status == Status.SUPPRESSED
    assert len(fake_postmark.received) == 1


def test_email_opens_and_clicks_are_counted_once_per_event(api, live_callbacks, fake_postmark):
    fake_postmark.configure(outcome="delivered", opens=2, clicks=1, click_url="https://example.com/offer")
    message = post_message(api, channel="email", to="ada@example.com", subject="News", body="Hello")
    run_burst_worker()

    callbacks = wait_for_callbacks(fake_postmark, 4)
    assert [(c["kind"], c["status"]) for c in callbacks] == [
        ("Delivery", 200),
        ("Open", 200),
        ("Open", 200),
        ("Click", 200),
    ]
    for callback in callbacks[1:]:  # Postmark retrying its opens and clicks
        requests.post(callback["url"], data=callback["body"], headers=callback["headers"], timeout=5)

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert (message.opens_count, message.clicks_count) == (2, 1)
    assert message.first_opened_at is not None and message.first_clicked_at is not None
    detail = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert (detail["opens_count"], detail["clicks_count"]) == (2, 1)
    [received] = fake_postmark.received
    assert received["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_whatsapp_through_the_twilio_client_reaches_the_fake_and_comes_back_read(api, live_callbacks, fake_twilio):
    fake_twilio.configure(outcome="read")
    message = post_message(
        api,
        channel="whatsapp",
        to="+14155550100",
        content_sid="HX" + "b" * 32,
        content_variables={"1": "Ada", "2": "12:30"},
    )
    run_burst_worker()

    wait_for_status(message, Status.DELIVERED)
    wait_for_callbacks(fake_twilio, 3)
    message.refresh_from_db()
    assert message.read_at is not None
    [received] = fake_twilio.received
    assert (received["to"], received["from"]) == ("whatsapp:+14155550100", "whatsapp:+14155238886")
    assert received["content_sid"] == "HX" + "b" * 32
    assert received["content_variables"] == '{"1": "Ada", "2": "12:30"}'
    assert [e.detail for e in message.events.filter(kind="provider")] == [
        "Twilio: sent",
        "Twilio: delivered",
        "Twilio: read",
    ]


def test_messenger_through_the_graph_api_reaches_the_fake_and_comes_back_delivered_and_read(
    api, live_callbacks, fake_messenger
):
    fake_messenger.configure(outcome="read")
    message = post_message(api, channel="messenger", to="1234567890123456", body="Your table is ready")
    run_burst_worker()

    wait_for_status(message, Status.DELIVERED)
    callbacks = wait_for_callbacks(fake_messenger, 2)
    assert [(c["kind"], c["status"]) for c in callbacks] == [("delivery", 200), ("read", 200)]
    message.refresh_from_db()
    assert message.read_at is not None
    [received] = fake_messenger.received
    assert (received["recipient_id"], received["text"], received["messaging_type"]) == (
        "1234567890123456",
        "Your table is ready",
        "UPDATE",
    )
    assert received["appsecret_proof"] is True
    assert message.provider_message_id == received["message_id"]


def test_receipts_that_overtake_the_worker_still_end_delivered(api, live_callbacks, fake_twilio, fake_messenger):
    """No delay: Twilio's and Meta's callbacks race the worker's own write of `sent`."""
    fake_twilio.configure(callback_delay=0)
    fake_messenger.configure(callback_delay=0)
    messages = [post_message(api, channel="sms", to=f"+1415555{n:04d}", body="Race") for n in range(10)]
    messages += [post_message(api, channel="messenger", to=f"12345{n}", body="Race") for n in range(10)]

    run_burst_worker()

    for message in messages:
        wait_for_status(message, Status.DELIVERED)
        assert message.provider_message_id
        assert message.lease_expires_at is None
