import django_rq
import pytest
from rest_framework.test import APIClient

from campaigns.services.campaign_spend_caps import campaign_cap_source
from deliveries.backends.sms import locmem
from deliveries.services.api_keys import api_key_create
from fake_providers.messenger import FakeMessenger
from fake_providers.postmark import FakePostmark
from fake_providers.twilio import FakeTwilio
from guard.services.pricing import forget_prices
from guard.services.spend_caps import forget_spend_caps
from tests import fast_flush
from tests.support import wait_for

fast_flush.install()

WEBHOOK_SECRET = "tidings:test-webhook-secret"


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with empty queues (the test settings use their own Redis database)."""
    connection = django_rq.get_connection("default")
    connection.flushdb()
    yield connection


@pytest.fixture(autouse=True)
def fresh_price_list():
    """Each test reads the price list anew: the test database is emptied without the signals that would tell the
    process's copy (guard.services.pricing) to forget it. The same for the spend caps."""
    forget_prices()
    forget_spend_caps()
    campaign_cap_source.forget()


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


@pytest.fixture(scope="session")
def fake_messenger_server():
    fake = FakeMessenger()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio(fake_twilio_server, settings):
    """The fake Twilio, emptied, with the real twilio backends (SMS and WhatsApp) pointed at it.

    Its status callbacks go to PUBLIC_BASE_URL, which is http://testserver (nowhere: the fake skips hosts that are
    not this machine) unless the test asks for `live_callbacks`."""
    fake_twilio_server.reset()
    settings.SMS_BACKEND = "twilio"
    settings.WHATSAPP_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = fake_twilio_server.account_sid
    settings.TWILIO_AUTH_TOKEN = fake_twilio_server.auth_token
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_WHATSAPP_FROM = "whatsapp:+14155238886"
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


@pytest.fixture
def fake_messenger(fake_messenger_server, settings):
    """The fake Graph API, emptied, with the Messenger backend pointed at it."""
    fake_messenger_server.reset()
    settings.MESSENGER_BACKEND = "graph"
    settings.MESSENGER_PAGE_ACCESS_TOKEN = fake_messenger_server.access_token
    settings.MESSENGER_APP_SECRET = fake_messenger_server.app_secret
    settings.MESSENGER_GRAPH_API_URL = fake_messenger_server.url
    settings.MESSENGER_TIMEOUT = 5
    yield fake_messenger_server
    fake_messenger_server.reset()


@pytest.fixture
def live_callbacks(live_server, settings, fake_twilio, fake_postmark, fake_messenger):
    """The whole feedback loop: a live Django server the fakes call back, as providers call production.

    Twilio posts to each message's StatusCallback (built from PUBLIC_BASE_URL), Postmark and Meta to the webhook
    URLs configured at them. The test waits for the callbacks it expects; teardown waits for the rest, so no
    request is still writing when the test database is flushed."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    fake_postmark.configure(
        webhook_url=f"{live_server.url}/webhooks/anymail/postmark/tracking/", webhook_auth=WEBHOOK_SECRET
    )
    fake_messenger.configure(webhook_url=f"{live_server.url}/webhooks/messenger/")
    for fake in (fake_twilio, fake_postmark, fake_messenger):
        fake.configure(callback_delay=0.02)
    yield live_server
    for fake in (fake_twilio, fake_postmark, fake_messenger):
        wait_for(lambda fake=fake: fake.callbacks_in_flight == 0, timeout=15, message="callbacks to finish")
