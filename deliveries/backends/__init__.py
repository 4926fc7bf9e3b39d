"""Backends by channel. SMS_BACKEND takes a short name or a dotted path; email always goes through
Django's EMAIL_BACKEND (console in development, anymail in production, locmem in tests)."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseBackend

SMS_BACKENDS = {
    "twilio": "deliveries.backends.sms.twilio.SmsBackend",
    "console": "deliveries.backends.sms.console.SmsBackend",
    "locmem": "deliveries.backends.sms.locmem.SmsBackend",
}
EMAIL_BACKEND = "deliveries.backends.email.django_mail.EmailBackend"


def backend_path_for(channel: str) -> str:
    if channel == "sms":
        return SMS_BACKENDS.get(settings.SMS_BACKEND, settings.SMS_BACKEND)
    if channel == "email":
        return EMAIL_BACKEND
    raise ValueError(f"No backend for channel {channel!r}")


def provider_for(channel: str) -> str:
    """The name of the provider a channel sends through (twilio, postmark, locmem...): the key of its circuit
    breaker and rate limits."""
    if channel == "email":
        from .email.django_mail import provider_name_for

        return provider_name_for(settings.EMAIL_BACKEND)
    return import_string(backend_path_for(channel)).provider_name


def get_backend(channel: str) -> BaseBackend:
    """A fresh backend instance for the channel, as configured in settings."""
    return import_string(backend_path_for(channel))()
