"""Email tracking through anymail: its ESP webhook views (mounted at /webhooks/anymail/) check the ESP's
authentication (ANYMAIL["WEBHOOK_SECRET"] basic auth, plus a signature where the ESP has one), normalise the
event and send the `tracking` signal, which lands here. An exception makes anymail answer 500, so the ESP
retries: that is what we want when the database is down, and replays are harmless.

Anymail accepts every request when WEBHOOK_SECRET is empty (it only warns), and mounts a route for every ESP it
knows. We fail closed instead: no secret, 403 and nothing changed; and only the ESP that EMAIL_BACKEND sends
through answers, every other ESP's routes are 404.
"""

from __future__ import annotations

import functools
import logging

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import tracking
from django.conf import settings
from django.dispatch import receiver
from django.http import Http404, HttpResponseForbidden
from django.urls import URLPattern, URLResolver

from messaging_project.log_context import log_context

from ..instruments import webhook_events, webhook_kind
from ..services.feedback import email_tracking_record
from .signature_failures import signature_failure_record

logger = logging.getLogger(__name__)

ANYMAIL_BACKENDS_PREFIX = "anymail.backends."


@receiver(tracking, dispatch_uid="tidings.email_tracking")
def email_tracking_received(sender, event, esp_name, **kwargs) -> None:
    with log_context(provider=esp_name.lower(), recipient=getattr(event, "recipient", None)):
        outcome = email_tracking_record(event=event, esp_name=esp_name)
    webhook_events.labels(esp_name.lower(), webhook_kind(event.event_type), outcome).inc()


def configured_esp() -> str:
    """The ESP EMAIL_BACKEND sends through, as anymail names its webhook routes ("postmark", "amazon_ses"), or ""
    when email does not go through anymail (console, SMTP, anymail's own test backend has no webhooks)."""
    backend = settings.EMAIL_BACKEND
    if not backend.startswith(ANYMAIL_BACKENDS_PREFIX):
        return ""
    module = backend.removeprefix(ANYMAIL_BACKENDS_PREFIX).split(".", 1)[0]
    return "" if module == "test" else module


def esp_of(pattern: URLPattern) -> str:
    """The ESP a route of anymail.urls belongs to: its first path segment ("postmark/tracking/" -> "postmark")."""
    return str(pattern.pattern).lstrip("^").split("/", 1)[0]


def configured_esp_only(view, esp: str):
    """Answers only for the configured ESP (404 for every other), only with a webhook secret set (403 without, so
    nobody can post events while it is missing), and 403 rather than anymail's 400 for wrong credentials, like
    every other webhook of ours, so a forged callback looks the same whichever provider it pretends to be.

    Settings are read per request, so a change of EMAIL_BACKEND or of the secret applies without re-mounting."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if esp != configured_esp():
            raise Http404("No such webhook.")
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            logger.warning("Refused an email webhook at %s: ANYMAIL_WEBHOOK_SECRET is not set", request.path)
            signature_failure_record()
            return HttpResponseForbidden("Webhook authentication is not configured.")
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            signature_failure_record()
            return HttpResponseForbidden("Invalid webhook credentials.")

    return wrapper


def anymail_urls():
    """anymail.urls, with every view wrapped by configured_esp_only."""
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
                        configured_esp_only(pattern.callback, esp_of(pattern)),
                        pattern.default_args,
                        pattern.name,
                    )
                )
        return wrapped

    return wrap(anymail.urls.urlpatterns), anymail.urls.app_name
