"""The fake Postmark must answer the way anymail's real Postmark backend expects, or tests against it prove nothing."""

from __future__ import annotations

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
