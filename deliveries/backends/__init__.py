"""Backends by channel. `<CHANNEL>_BACKEND` takes a short name or a dotted path; email always goes through
Django's EMAIL_BACKEND (console in development, anymail in production, locmem in tests).

Adding a channel is one backend module plus an entry here and its settings: see docs/providers.md.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseBackend

# Short names per channel. console and locmem work for every text channel.
BACKENDS = {
    "sms": {
        "twilio": "deliveries.backends.sms.twilio.SmsBackend",
        "console": "deliveries.backends.sms.console.SmsBackend",
        "locmem": "deliveries.backends.sms.locmem.SmsBackend",
    },
    "whatsapp": {
        "twilio": "deliveries.backends.whatsapp.twilio.WhatsAppBackend",
        "console": "deliveries.backends.sms.console.SmsBackend",
        "locmem": "deliveries.backends.sms.locmem.SmsBackend",
    },
    "messenger": {
        "graph": "deliveries.backends.messenger.graph.MessengerBackend",
        "console": "deliveries.backends.sms.console.SmsBackend",
        "locmem": "deliveries.backends.sms.locmem.SmsBackend",
    },
}
# The setting naming each channel's backend.
BACKEND_SETTINGS = {"sms": "SMS_BACKEND", "whatsapp": "WHATSAPP_BACKEND", "messenger": "MESSENGER_BACKEND"}
EMAIL_BACKEND = "deliveries.backends.email.django_mail.EmailBackend"


def backend_path_for(channel: str) -> str:
    if channel == "email":
        return EMAIL_BACKEND
    if channel not in BACKENDS:
        raise ValueError(f"No backend for channel {channel!r}")
    configured = getattr(settings, BACKEND_SETTINGS[channel])
    return BACKENDS[channel].get(configured, configured)


def email_provider_name(email_backend_path: str) -> str:
    """`anymail.backends.postmark.EmailBackend` -> `postmark`; Django's own -> `console`, `locmem`, `smtp`."""
    parts = email_backend_path.split(".")
    return parts[-2] if len(parts) >= 2 else email_backend_path


def provider_for(channel: str) -> str:
    """The name of the provider a channel sends through (twilio, postmark, locmem...): the key of its circuit
    breaker and rate limits."""
    if channel == "email":
        return email_provider_name(settings.EMAIL_BACKEND)
    return import_string(backend_path_for(channel)).provider_name


def get_backend(channel: str) -> BaseBackend:
    """A fresh backend instance for the channel, as configured in settings."""
    return import_string(backend_path_for(channel))()
