"""Production: everything secret comes from the environment, and `check --deploy` is clean.

https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("DEBUG must be off with production settings.")

# base.py falls back to the console backend, which prints every email (one-time codes included) to the log and
# records it as sent. Production takes whatever backend it is given, console included, but never by default.
if not env("EMAIL_BACKEND", default=""):
    raise ImproperlyConfigured(
        "EMAIL_BACKEND is not set: production would print every email to the log instead of sending it. "
        "Set EMAIL_BACKEND to your ESP's anymail backend (e.g. anymail.backends.postmark.EmailBackend), "
        "or to django.core.mail.backends.console.EmailBackend if printing is really what you want."
    )

# An erased person's opt-out is kept as a keyed hash of their address. Derived from SECRET_KEY, the hashes would stop
# matching the day SECRET_KEY is rotated and its fallback dropped, and those people would be messaged again.
if not env("SUPPRESSION_HASH_KEY", default=""):
    raise ImproperlyConfigured(
        "SUPPRESSION_HASH_KEY is not set: production needs a key of its own for the hashed opt-outs of erased people "
        "(docs/security.md). Make one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'`, keep it "
        "with SECRET_KEY, and never change it (a replaced key goes to SUPPRESSION_HASH_KEY_FALLBACKS)."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Health checks come from the platform over plain HTTP, and Prometheus scrapes from the private network likewise
# (docs/metrics.md: its bearer token then travels in clear; scrape over https where that network is not yours).
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
SMS_BACKEND = env("SMS_BACKEND", default="twilio")
WHATSAPP_BACKEND = env("WHATSAPP_BACKEND", default="twilio")
MESSENGER_BACKEND = env("MESSENGER_BACKEND", default="graph")
# Provider webhooks are how statuses come back: callbacks must not be open to anyone (see deliveries/checks.py).
