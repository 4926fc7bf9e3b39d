"""Test settings: real Redis (its own database number), real PostgreSQL or SQLite, locmem providers."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

from .base import *  # noqa: E402,F403
from .base import DATABASES, env  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMS_BACKEND = env("SMS_BACKEND", default="locmem")
WHATSAPP_BACKEND = env("WHATSAPP_BACKEND", default="locmem")
MESSENGER_BACKEND = env("MESSENGER_BACKEND", default="locmem")
# The Django test client's host, so webhook signatures computed in tests match; tests that need providers to
# reach a real server point this at pytest-django's live_server.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://testserver").rstrip("/")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SEND_RETRY_BACKOFF = 0.0
DEFAULT_FROM_EMAIL = "Tidings <tidings@example.com>"
# Lets several checkouts run their suites at once on one machine without sharing a test database.
_suffix = env("TEST_DB_SUFFIX", default="")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so worker subprocesses started by tests see the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test-db{_suffix}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_suffix}"}
