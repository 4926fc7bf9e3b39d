"""Email through anymail with the ESP's API called by the call driver: the same email, the same result and the
same errors as anymail's own requests-based send, to the fake Postmark over real HTTP."""

import pytest

from deliveries.backends.base import OutgoingMessage
from deliveries.backends.email.django_mail import EmailBackend
from deliveries.exceptions import PermanentDeliveryError, TransientDeliveryError
from deliveries.sending.call_pool import CallPool


def outgoing(pk: int, to: str | None = None, **fields) -> OutgoingMessage:
    return OutgoingMessage(
        id=pk,
        channel="email",
        recipient=to or f"reader{pk}@example.com",
        subject=f"Issue {pk}",
        body=f"Hello {pk}",
        **fields,
    )


def send_all(backend: EmailBackend, messages: list[OutgoingMessage]) -> dict:
    by_key = {}
    with CallPool(backend, size=len(messages)) as pool:
        pool.start([(message.id, message) for message in messages])
        while len(by_key) < len(messages):
            finished = pool.results(timeout=10)
            assert finished, "a call did not come back"
            by_key.update(finished)
    return by_key


def test_anymail_http_backends_send_through_the_driver_and_django_ones_do_not(fake_postmark, settings):
    assert EmailBackend().supports_async
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert not EmailBackend().supports_async


def test_emails_reach_the_esp_as_anymail_builds_them_and_come_back_with_its_ids(fake_postmark):
    messages = [outgoing(pk, unsubscribe_url=f"https://example.com/u/{pk}", attempt=2) for pk in range(1, 21)]
    by_key = send_all(EmailBackend(), messages)
    assert all(by_key[pk].ok and by_key[pk].message_id == pk for pk in range(1, 21))
    assert len({result.provider_message_id for result in by_key.values()}) == 20
    assert {result.provider_status for result in by_key.values()} == {"sent"}
    received = {item["to"]: item for item in fake_postmark.received}
    first = received["reader1@example.com"]
    assert first["subject"] == "Issue 1"
    assert first["metadata"] == {"tidings_message_id": "1", "tidings_attempt": "2"}
    assert first["headers"]["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert first["MessageID"] == by_key[1].provider_message_id


def test_a_refused_recipient_is_permanent_and_an_unavailable_esp_is_worth_retrying(fake_postmark):
    [(_, refused)] = send_all(EmailBackend(), [outgoing(1, to="gone@inactive.example")]).items()
    assert isinstance(refused.error, PermanentDeliveryError)
    assert str(refused.error).startswith("The email provider refused the recipient")
    fake_postmark.down = True
    [(_, unavailable)] = send_all(EmailBackend(), [outgoing(2)]).items()
    assert isinstance(unavailable.error, TransientDeliveryError)
    assert str(unavailable.error).startswith("The email provider answered HTTP 503: Postmark API response 503")


@pytest.mark.parametrize("latency", [2])
def test_an_esp_that_does_not_answer_in_time_is_worth_retrying(fake_postmark, settings, latency):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.2}
    fake_postmark.latency = latency
    [(_, result)] = send_all(EmailBackend(), [outgoing(1)]).items()
    assert isinstance(result.error, TransientDeliveryError)
    assert str(result.error).startswith("Could not hand the email to the provider:")
    assert "timed out" in str(result.error).lower()


def test_the_esp_is_reached_through_the_proxy_the_environment_names(fake_postmark, settings, monkeypatch):
    # The ESP's host does not resolve: only the proxy (here the fake itself, which serves absolute-form requests)
    # can get the email there.
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_API_URL": "http://esp.invalid/"}
    monkeypatch.setenv("HTTP_PROXY", fake_postmark.url)
    monkeypatch.setenv("NO_PROXY", "")
    [(_, result)] = send_all(EmailBackend(), [outgoing(1)]).items()
    assert result.ok, result.error
    assert [item["to"] for item in fake_postmark.received] == ["reader1@example.com"]
    monkeypatch.setenv("NO_PROXY", "esp.invalid")
    [(_, direct)] = send_all(EmailBackend(), [outgoing(2)]).items()
    assert isinstance(direct.error, TransientDeliveryError)  # no proxy for this host: it does not resolve
