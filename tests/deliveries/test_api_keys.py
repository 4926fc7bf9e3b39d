"""API keys: creation with scopes, expiry, rate and senders; authentication of expired keys; the sender
allowlist through the API."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time
from rest_framework.test import APIClient

from deliveries.models import ApiScope, Message
from deliveries.services.api_keys import ApiKeyInvalid, api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/"


def client_with(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def sms(**overrides):
    return {"channel": "sms", "to": "+14155550100", "body": "Your code is 1234", **overrides}


def test_scopes_are_stored_once_each_in_a_fixed_order():
    api_key, _ = api_key_create(name="k", scopes=["messages:read", " messages:send", "messages:read"])
    assert api_key.scopes == ["messages:send", "messages:read"]


def test_an_unknown_scope_is_refused_naming_the_scopes_there_are():
    with pytest.raises(ApiKeyInvalid) as refused:
        api_key_create(name="k", scopes=["messages:send", "messages:write"])
    assert str(refused.value) == f"Unknown scope messages:write; the scopes are {', '.join(ApiScope.values)}."


def test_an_empty_scope_list_is_refused():
    with pytest.raises(ApiKeyInvalid, match="at least one scope"):
        api_key_create(name="k", scopes=[])


@pytest.mark.parametrize("rate", ["fast", "10/fortnight", "0/second", "100", "10/s"])
def test_a_rate_that_is_not_one_is_refused(rate):
    with pytest.raises(ApiKeyInvalid, match="is not a rate; write it like 100/second"):
        api_key_create(name="k", rate=rate)


def test_rates_the_limits_library_reads_are_kept_as_written():
    api_key, _ = api_key_create(name="k", rate="10/second;1000/hour")
    assert api_key.rate == "10/second;1000/hour"


def test_senders_are_stored_in_one_spelling_and_junk_is_refused():
    api_key, _ = api_key_create(
        name="k",
        allowed_senders=["whatsapp:+14155238886", "Ada <Ada@Example.com>", "MG" + "a" * 32, "Tidings", "+14155238886"],
    )
    assert api_key.allowed_senders == ["+14155238886", "ada@example.com", "MG" + "a" * 32, "Tidings"]
    with pytest.raises(ApiKeyInvalid, match="'12' is not a sender"):
        api_key_create(name="j", allowed_senders=["12"])


def test_an_expiry_in_the_past_is_refused():
    with pytest.raises(ApiKeyInvalid, match="must be in the future"):
        api_key_create(name="k", expires_at=timezone.now() - timedelta(seconds=1))


def test_an_expired_key_is_refused_even_while_the_process_remembers_it():
    with freeze_time(timezone.now()) as frozen:
        api_key, raw = api_key_create(name="k", expires_at=timezone.now() + timedelta(seconds=2))
        client = client_with(raw)
        assert client.get(URL).status_code == 200
        assert api_key_authenticate(raw) == api_key  # remembered (for 2 s, not the usual 5)
        frozen.tick(timedelta(seconds=2))
        response = client.get(URL)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid, revoked or expired API key."}
        assert api_key_authenticate(raw) is None
        api_key.refresh_from_db()
        assert not api_key.is_active


def test_a_key_expiring_in_a_year_is_active_until_then():
    api_key, raw = api_key_create(name="k", expires_at=timezone.now() + timedelta(days=365))
    assert api_key.is_active
    assert client_with(raw).get(URL).status_code == 200


@pytest.fixture
def restricted():
    api_key, raw = api_key_create(
        name="restricted", scopes=[ApiScope.MESSAGES_SEND], allowed_senders=["+15005550006", "news@example.com"]
    )
    return client_with(raw)


def test_a_key_with_a_sender_list_may_use_those_senders_or_the_default(restricted):
    assert restricted.post(URL, sms(sender="+15005550006"), format="json").status_code == 201
    assert restricted.post(URL, sms(), format="json").status_code == 201  # the configured sender
    email = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "x"}
    response = restricted.post(URL, {**email, "sender": "News <NEWS@example.com>"}, format="json")
    assert response.status_code == 201


def test_a_sender_outside_the_keys_list_is_refused_with_403_naming_it(restricted):
    response = restricted.post(URL, sms(sender="+15005550007"), format="json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "This key may not use the sender '+15005550007'; its senders are +15005550006, news@example.com."
    }
    assert Message.objects.count() == 0


def test_a_sender_outside_the_list_is_refused_item_by_item_in_a_batch():
    _, raw = api_key_create(name="b", scopes=[ApiScope.BATCHES_SEND], allowed_senders=["Tidings"])
    payload = {"messages": [sms(sender="Tidings"), sms(sender="Other")]}
    body = client_with(raw).post("/api/v1/messages/batch/", payload, format="json").json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][1]["errors"] == {
        "sender": ["This key may not use the sender 'Other'; its senders are Tidings."]
    }


def test_a_key_without_a_sender_list_may_set_any_sender(api):
    assert api.post(URL, sms(sender="+15005550007"), format="json").status_code == 201


def test_authenticating_a_key_costs_no_query_while_remembered(django_assert_num_queries):
    _, raw = api_key_create(name="k", scopes=[ApiScope.MESSAGES_READ], rate="5/second")
    api_key_authenticate(raw)
    with django_assert_num_queries(0):
        assert api_key_authenticate(raw) is not None


def test_creating_a_key_logs_nothing_of_its_secret(caplog):
    with caplog.at_level(logging.DEBUG):
        _, raw = api_key_create(name="k")
    assert raw not in caplog.text
