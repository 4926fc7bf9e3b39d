"""Per-key rates (deliveries.api.throttling), counted in the test Redis."""

import logging

import pytest
from rest_framework.test import APIClient

from deliveries.models import ApiScope
from deliveries.services.api_keys import api_key_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/"


def client_for(rate="", name="k"):
    _, raw = api_key_create(name=name, scopes=[ApiScope.MESSAGES_READ], rate=rate)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_key_over_its_rate_gets_429_with_retry_after(clean_redis):
    client = client_for("2/minute")
    assert [client.get(URL).status_code for _ in range(2)] == [200, 200]
    response = client.get(URL)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()
    assert clean_redis.keys("tidings:api-rate*")  # counted in Redis, where every web process sees it


def test_each_key_has_its_own_count():
    first, second = client_for("1/minute", "first"), client_for("1/minute", "second")
    assert first.get(URL).status_code == 200
    assert first.get(URL).status_code == 429
    assert second.get(URL).status_code == 200


def test_the_tightest_of_several_rates_applies():
    client = client_for("100/second;2/hour")
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 429]


def test_a_key_without_a_rate_never_touches_redis(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: any use of Redis would log a warning
    client = client_for()
    with caplog.at_level(logging.WARNING, logger="deliveries.api.throttling"):
        assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 200]
    assert caplog.records == []


def test_a_rated_key_is_let_through_with_a_warning_when_redis_is_down(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client = client_for("1/minute")
    with caplog.at_level(logging.WARNING, logger="deliveries.api.throttling"):
        assert [client.get(URL).status_code for _ in range(2)] == [200, 200]
    assert "rate 1/minute not checked, Redis unreachable" in caplog.text
