"""The fake Postmark must answer the way anymail's real Postmark backend expects, or tests against it prove nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection

from fake_providers.postmark import FakePostmark

SENDER = "Tidings <noreply@example.com>"


@pytest.fixture
def fake() -> Iterator[FakePostmark]:
    postmark = FakePostmark(seed=1)
    with postmark.start():
        yield postmark


def connection_for(fake: FakePostmark, server_token: str | None = None, **options):
    return get_connection(
        "anymail.backends.postmark.EmailBackend",
        server_token=server_token or fake.server_token,
        api_url=fake.url + "/",
        **options,
    )


def email_to(fake: FakePostmark, to: list[str], connection=None, **options) -> EmailMessage:
    return EmailMessage("Subject", "Text body", SENDER, to, connection=connection or connection_for(fake, **options))


def test_a_sent_email_gets_a_message_id_and_is_recorded_with_its_fields(fake):
    message = EmailMultiAlternatives(
        "Welcome", "Text body", SENDER, ["Ann <ann@example.com>"], headers={"X-Campaign": "spring"}
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    message.metadata = {"delivery_id": "42"}
    message.tags = ["welcome"]
    message.connection = connection_for(fake)

    assert message.send() == 1

    status = message.anymail_status
    assert status.status == {"sent"}
    [recorded] = fake.received
    assert recorded["MessageID"] == status.message_id
    assert recorded["to"] == "Ann <ann@example.com>"
    assert recorded["from"] == SENDER
    assert (recorded["subject"], recorded["text_body"], recorded["html_body"]) == (
        "Welcome",
        "Text body",
        "<p>HTML body</p>",
    )
    assert (recorded["metadata"], recorded["tag"]) == ({"delivery_id": "42"}, "welcome")
    assert recorded["headers"] == {"X-Campaign": "spring"}


def test_the_settings_fixture_configuration_reaches_the_fake(fake, settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": fake.server_token, "POSTMARK_API_URL": fake.url + "/"}

    EmailMessage("Subject", "Text body", SENDER, ["ann@example.com"]).send()

    assert fake.count_by_to() == {"ann@example.com": 1}


def test_per_recipient_metadata_goes_through_the_batch_endpoint_with_one_message_id_each(fake):
    message = email_to(fake, ["ann@example.com", "bob@example.com"])
    message.merge_metadata = {"ann@example.com": {"n": 1}, "bob@example.com": {"n": 2}}

    message.send()

    recipients = message.anymail_status.recipients
    by_to = {recorded["to"]: recorded for recorded in fake.received}
    assert recipients["ann@example.com"].message_id == by_to["ann@example.com"]["MessageID"]
    assert recipients["bob@example.com"].message_id == by_to["bob@example.com"]["MessageID"]
    assert by_to["bob@example.com"]["metadata"] == {"n": 2}
    assert fake.request_count == 1


def test_an_invalid_recipient_is_refused_and_reported_as_invalid(fake):
    message = email_to(fake, ["nobody@no-tld"])

    with pytest.raises(AnymailRecipientsRefused):
        message.send()

    assert message.anymail_status.recipients["nobody@no-tld"].status == "invalid"
    assert fake.received == []


def test_an_invalid_address_among_valid_ones_stops_the_whole_message(fake):
    message = email_to(fake, ["ann@example.com", "nobody@no-tld"])

    message.send()

    assert message.anymail_status.recipients["nobody@no-tld"].status == "invalid"
    assert message.anymail_status.recipients["ann@example.com"].status == "unknown"
    assert fake.received == []


def test_the_invalid_to_answer_has_postmarks_shape(fake):
    response = requests.post(
        f"{fake.url}/email",
        json={"From": SENDER, "To": "nobody@no-tld", "TextBody": "Hi"},
        headers={"X-Postmark-Server-Token": fake.server_token},
        timeout=5,
    )

    assert response.status_code == 422
    assert response.json() == {"ErrorCode": 300, "Message": "Invalid 'To' address: 'nobody@no-tld'."}


def test_an_inactive_recipient_is_reported_as_rejected(fake):
    message = email_to(fake, ["gone@inactive.example"], ignore_recipient_status=True)

    message.send()

    assert message.anymail_status.recipients["gone@inactive.example"].status == "rejected"
    assert fake.received == []


def test_a_message_only_to_inactive_recipients_raises_recipients_refused(fake):
    with pytest.raises(AnymailRecipientsRefused):
        email_to(fake, ["gone@inactive.example"]).send()


def test_a_message_to_active_and_inactive_recipients_is_sent_to_the_active_ones(fake):
    message = email_to(fake, ["ann@example.com", "Gone <Gone@Inactive.example>"])

    message.send()

    recipients = message.anymail_status.recipients
    assert recipients["ann@example.com"].status == "sent"
    assert recipients["Gone@Inactive.example"].status == "rejected"
    assert fake.count_by_to() == {"ann@example.com": 1}


def test_a_wrong_server_token_is_refused_with_401(fake):
    with pytest.raises(AnymailRequestsAPIError) as raised:
        email_to(fake, ["ann@example.com"], connection=connection_for(fake, server_token="wrong")).send()

    assert raised.value.status_code == 401
    assert raised.value.response.json() == {
        "ErrorCode": 10,
        "Message": "No Account or Server API tokens were supplied in the HTTP headers.",
    }


@pytest.mark.parametrize(
    ("changes", "status"),
    [({"fail_500_rate": 1.0}, 500), ({"fail_429_rate": 1.0}, 429), ({"down": True}, 503)],
)
def test_injected_failures_raise_api_errors_with_their_status(fake, changes, status):
    fake.configure(**changes)

    with pytest.raises(AnymailRequestsAPIError) as raised:
        email_to(fake, ["ann@example.com"]).send()

    assert raised.value.status_code == status
    assert fake.received == []
    assert fake.request_count == 1


def test_recorded_messages_are_listed_and_reset_over_http(fake):
    email_to(fake, ["ann@example.com"]).send()
    requests.post(f"{fake.url}/_fake/config", json={"down": True}, timeout=5)

    listed = requests.get(f"{fake.url}/_fake/messages", timeout=5).json()
    requests.post(f"{fake.url}/_fake/reset", timeout=5)

    assert listed["request_count"] == 1
    assert [message["to"] for message in listed["messages"]] == ["ann@example.com"]
    assert (fake.received, fake.request_count, fake.down) == ([], 0, False)


# --- Tracking webhooks --------------------------------------------------------------------------------------


def posted_events(fake: FakePostmark, app, count: int) -> list[dict]:
    import json

    from tests.support import wait_for

    wait_for(lambda: len(app.requests) >= count and fake.callbacks_in_flight == 0, timeout=5, message="events")
    return [json.loads(request["body"]) for request in app.requests]


def test_with_a_webhook_url_it_posts_delivery_opens_and_clicks_with_basic_auth(fake):
    from tests.support import CallbackReceiver

    with CallbackReceiver() as app:
        fake.configure(
            webhook_url=f"{app.url}/webhooks/anymail/postmark/tracking/",
            webhook_auth="user:secret",
            opens=2,
            clicks=1,
            callback_delay=0,
        )
        message = email_to(fake, ["ann@example.com"])
        message.metadata = {"tidings_message_id": "12"}
        message.send()
        events = posted_events(fake, app, 4)

    assert [event["RecordType"] for event in events] == ["Delivery", "Open", "Open", "Click"]
    assert [event.get("FirstOpen") for event in events[1:3]] == [True, False]
    assert {event["MessageID"] for event in events} == {message.anymail_status.message_id}
    assert {event["Recipient"] for event in events} == {"ann@example.com"}
    assert events[0]["Metadata"] == {"tidings_message_id": "12"}
    assert events[3]["OriginalLink"] == "https://example.com/welcome"
    assert app.requests[0]["headers"]["Authorization"] == "Basic dXNlcjpzZWNyZXQ="


def test_anymail_reads_every_event_the_fake_posts(fake):
    """The fake's payloads go through anymail's own Postmark parser, to the event types we act on."""
    from anymail.webhooks.postmark import PostmarkTrackingWebhookView

    from fake_providers.postmark import tracking_event

    recorded = {"MessageID": "m-1", "metadata": {"tidings_message_id": "3"}, "tag": "t", "from": "a@example.com"}
    view = PostmarkTrackingWebhookView(webhook_secret="u:p")
    parsed = {
        kind: view.esp_to_anymail_event(tracking_event(kind, recorded, "ann@example.com", first=True, url="u"))
        for kind in ("Delivery", "Bounce", "SoftBounce", "SpamComplaint", "SubscriptionChange", "Open", "Click")
    }
    assert {kind: event.event_type for kind, event in parsed.items()} == {
        "Delivery": "delivered",
        "Bounce": "bounced",
        "SoftBounce": "bounced",
        "SpamComplaint": "complained",
        "SubscriptionChange": "unsubscribed",
        "Open": "opened",
        "Click": "clicked",
    }
    assert {event.metadata["tidings_message_id"] for event in parsed.values()} == {"3"}
    assert parsed["Bounce"].event_id is not None and parsed["Bounce"].recipient == "ann@example.com"
    assert parsed["Click"].click_url == "u"


@pytest.mark.parametrize(
    ("outcome", "record_types"),
    [
        ("bounce", ["Bounce"]),
        ("complaint", ["Delivery", "Open", "SpamComplaint"]),
        ("unsubscribe", ["Delivery", "Open", "SubscriptionChange"]),
    ],
)
def test_the_outcome_decides_the_events(fake, outcome, record_types):
    from tests.support import CallbackReceiver

    with CallbackReceiver() as app:
        fake.configure(webhook_url=f"{app.url}/hook", outcome=outcome, opens=1, callback_delay=0)
        email_to(fake, ["ann@example.com"]).send()
        events = posted_events(fake, app, len(record_types))
    assert [event["RecordType"] for event in events] == record_types


def test_without_a_webhook_url_nothing_is_posted(fake):
    email_to(fake, ["ann@example.com"]).send()
    assert fake.callbacks == [] and fake.callbacks_in_flight == 0


def test_inactive_recipients_get_no_events(fake):
    from tests.support import CallbackReceiver

    with CallbackReceiver() as app:
        fake.configure(webhook_url=f"{app.url}/hook", callback_delay=0)
        email_to(fake, ["ann@example.com", "gone@inactive.example"]).send()
        events = posted_events(fake, app, 1)
    assert [event["Recipient"] for event in events] == ["ann@example.com"]


@pytest.mark.parametrize("batch", [False, True])
def test_an_email_is_received_when_its_request_arrives_not_when_the_slow_answer_leaves(fake, batch):
    fake.latency = 0.3
    message = email_to(fake, ["ann@example.com", "bob@example.com"])
    if batch:  # per-recipient metadata: one call to /email/batch
        message.merge_metadata = {"ann@example.com": {"n": 1}, "bob@example.com": {"n": 2}}
    sent = time.time()
    message.send()
    answered = time.time()

    assert fake.request_count == 1
    assert [sent <= recorded["received_at"] <= answered - 0.3 for recorded in fake.received] == [True] * (1 + batch)


def test_the_server_behind_the_token_is_read_with_get_server(fake):
    response = requests.get(
        f"{fake.url}/server",
        headers={"Accept": "application/json", "X-Postmark-Server-Token": fake.server_token},
        timeout=5,
    )

    assert response.status_code == 200
    assert (response.json()["ID"], response.json()["Name"]) == (23, "Tidings fake server")


def test_get_server_with_a_wrong_token_is_refused_with_401_and_error_code_10(fake):
    response = requests.get(f"{fake.url}/server", headers={"X-Postmark-Server-Token": "wrong"}, timeout=5)

    assert response.status_code == 401
    assert response.json()["ErrorCode"] == 10
