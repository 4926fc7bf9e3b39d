"""Email tracking through anymail: its ESP webhook views (mounted at /webhooks/anymail/) check the ESP's
authentication (ANYMAIL["WEBHOOK_SECRET"] basic auth, plus a signature where the ESP has one), normalise the
event and send the `tracking` signal, which lands here. An exception makes anymail answer 500, so the ESP
retries: that is what we want when the database is down, and replays are harmless.
"""

from __future__ import annotations

import functools

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import tracking
from django.dispatch import receiver
from django.http import HttpResponseForbidden
from django.urls import URLPattern, URLResolver

from ..services.feedback import email_tracking_record


@receiver(tracking, dispatch_uid="tidings.email_tracking")
def email_tracking_received(sender, event, esp_name, **kwargs) -> None:
    email_tracking_record(event=event, esp_name=esp_name)


def forbidden_when_unauthenticated(view):
    """Anymail answers a request with wrong credentials with 400 (SuspiciousOperation); we answer 403, like every
    other webhook of ours, so a forged callback looks the same whichever provider it pretends to be."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            return HttpResponseForbidden("Invalid webhook credentials.")

    return wrapper


def anymail_urls():
    """anymail.urls, with every view wrapped by forbidden_when_unauthenticated."""
    import anymail.urls

    def wrap(patterns):
        wrapped = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                wrapped.append(URLResolver(pattern.pattern, wrap(pattern.url_patterns), namespace=pattern.namespace))
            else:
                wrapped.append(
                    URLPattern(
                        pattern.pattern,
                        forbidden_when_unauthenticated(pattern.callback),
                        pattern.default_args,
                        pattern.name,
                    )
                )
        return wrapped

    return wrap(anymail.urls.urlpatterns), anymail.urls.app_name
