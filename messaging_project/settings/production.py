"""Production: everything secret comes from the environment, and `check --deploy` is clean.

https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
"""

from .base import *  # noqa: F403
from .base import env

if DEBUG:  # noqa: F405
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DEBUG must be off with production settings.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Health checks come from the platform over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
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
