"""Local development: DEBUG on, a local SQLite file unless DATABASE_URL says otherwise, and every provider pointed
at the fake providers `make run` starts (`python -m fake_providers`), so messages go out and their statuses,
opens and clicks come back to the admin without any provider account.

Each value below is only a default: set the variable (in the environment or .env) to use a real provider, or
SMS_BACKEND=console (and the like) to have the worker print messages instead.
"""

import os

os.environ.setdefault("DEBUG", "1")

from .base import *  # noqa: E402,F403
from .base import ANYMAIL, env  # noqa: E402

# The fakes' addresses and credentials: the defaults of fake_providers/__main__.py (a test keeps them in step).
FAKE_TWILIO_URL = "http://127.0.0.1:8101"
FAKE_POSTMARK_URL = "http://127.0.0.1:8102/"
FAKE_MESSENGER_URL = "http://127.0.0.1:8103"

SMS_BACKEND = env("SMS_BACKEND", default="twilio")
WHATSAPP_BACKEND = env("WHATSAPP_BACKEND", default="twilio")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="ACfake" + "0" * 28)
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="fake-auth-token")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="+15005550006")
TWILIO_WHATSAPP_FROM = env("TWILIO_WHATSAPP_FROM", default="whatsapp:+14155238886")
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default=FAKE_TWILIO_URL).rstrip("/")

EMAIL_BACKEND = env("EMAIL_BACKEND", default="anymail.backends.postmark.EmailBackend")
ANYMAIL["POSTMARK_SERVER_TOKEN"] = env("POSTMARK_SERVER_TOKEN", default="fake-postmark-token")
ANYMAIL["POSTMARK_API_URL"] = env("POSTMARK_API_URL", default=FAKE_POSTMARK_URL)
ANYMAIL["WEBHOOK_SECRET"] = env("ANYMAIL_WEBHOOK_SECRET", default="tidings:development-webhook-secret")

MESSENGER_BACKEND = env("MESSENGER_BACKEND", default="graph")
MESSENGER_PAGE_ACCESS_TOKEN = env("MESSENGER_PAGE_ACCESS_TOKEN", default="fake-page-access-token")
MESSENGER_APP_SECRET = env("MESSENGER_APP_SECRET", default="fake-app-secret")
MESSENGER_VERIFY_TOKEN = env("MESSENGER_VERIFY_TOKEN", default="development-verify-token")
MESSENGER_GRAPH_API_URL = env("MESSENGER_GRAPH_API_URL", default=FAKE_MESSENGER_URL).rstrip("/")
# Postmark (and its fake) only send from an address with a real-looking domain.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Tidings <tidings@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# curl -H "Authorization: Bearer development-metrics-token" localhost:8000/metrics
METRICS_TOKEN = env("METRICS_TOKEN", default="development-metrics-token")
