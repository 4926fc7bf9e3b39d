"""Twilio's webhooks for SMS and WhatsApp: message status callbacks and inbound messages.

Both are signed: X-Twilio-Signature is a base64 HMAC-SHA1, keyed with the account's auth token, of the URL Twilio
called followed by every POST parameter name and value, sorted by name. The URL must be the public one Twilio
called, so we try PUBLIC_BASE_URL + path first, then the URL as Django sees this request (which is right behind a
proxy when USE_X_FORWARDED_HOST and SECURE_PROXY_SSL_HEADER are set). Anything else gets 403 and changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from messaging_project.log_context import log_context

from ..instruments import webhook_events, webhook_kind
from ..services.feedback import twilio_status_record
from ..services.inbound import twilio_inbound_record
from .signature_failures import signature_failure_record

logger = logging.getLogger(__name__)


def candidate_urls(request: HttpRequest) -> list[str]:
    """The URLs Twilio may have signed for this request: the public one first."""
    urls = [f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"]
    # DisallowedHost: the Host header is not one of ours, so only the public URL can match.
    with contextlib.suppress(DisallowedHost):
        urls.append(request.build_absolute_uri())
    return list(dict.fromkeys(urls))


def signature_valid(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not (token and signature):  # without a token anyone could sign; without a signature nobody did
        return False
    validator = RequestValidator(token)
    return any(validator.validate(url, request.POST, signature) for url in candidate_urls(request))


def twilio_webhook(view):
    """CSRF-exempt, POST only, and 403 unless Twilio signed the request."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with log_context(provider="twilio"):
            if not signature_valid(request):
                logger.warning("Refused a Twilio webhook with a missing or wrong signature at %s", request.path)
                signature_failure_record()
                return HttpResponseForbidden("Invalid Twilio signature.")
            return view(request, *args, **kwargs)

    return wrapper


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@twilio_webhook
def status_callback(request: HttpRequest) -> HttpResponse:
    """Twilio's StatusCallback for a message we sent; `message` and `attempt` are in the URL we gave Twilio."""
    message_id, attempt = _int_or_none(request.GET.get("message")), _int_or_none(request.GET.get("attempt"))
    with log_context(message_id=message_id, attempt=attempt, recipient=request.POST.get("To")):
        outcome = twilio_status_record(params=request.POST.dict(), message_id=message_id, attempt=attempt)
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or "unknown"
    webhook_events.labels("twilio", webhook_kind(status.lower()), outcome).inc()
    return HttpResponse(status=204)


@twilio_webhook
def inbound(request: HttpRequest) -> HttpResponse:
    """A message to one of our numbers (the number's or Messaging Service's "A message comes in" webhook)."""
    result = twilio_inbound_record(params=request.POST.dict())
    webhook_events.labels("twilio", "inbound", "applied").inc()
    reply = f"<Message>{escape(result.reply)}</Message>" if result.reply else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>', content_type="text/xml")
