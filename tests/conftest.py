import django_rq
import pytest
from rest_framework.test import APIClient

from deliveries.backends.sms import locmem
from deliveries.services.api_keys import api_key_create


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with empty queues (the test settings use their own Redis database)."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection


@pytest.fixture(autouse=True)
def sms_outbox():
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def api_key(db):
    key, raw = api_key_create(name="test-client")
    key.raw = raw
    return key


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw}")
    return client
