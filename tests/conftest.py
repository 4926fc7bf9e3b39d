import django_rq
import pytest
from rest_framework.test import APIClient

from deliveries.backends.sms import locmem
from deliveries.services.api_keys import api_key_create
from fake_providers.postmark import FakePostmark
from fake_providers.twilio import FakeTwilio


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


@pytest.fixture(scope="session")
def fake_twilio_server():
    fake = FakeTwilio()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_postmark_server():
    fake = FakePostmark()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio(fake_twilio_server, settings):
    """The fake Twilio, emptied, with the real twilio backend pointed at it."""
    fake_twilio_server.reset()
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = fake_twilio_server.account_sid
    settings.TWILIO_AUTH_TOKEN = fake_twilio_server.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE_URL = fake_twilio_server.url
    settings.TWILIO_TIMEOUT = 5
    yield fake_twilio_server
    fake_twilio_server.reset()


@pytest.fixture
def fake_postmark(fake_postmark_server, settings):
    """The fake Postmark, emptied, with anymail's real Postmark backend pointed at it."""
    fake_postmark_server.reset()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": fake_postmark_server.server_token,
        "POSTMARK_API_URL": fake_postmark_server.url + "/",
    }
    yield fake_postmark_server
    fake_postmark_server.reset()
