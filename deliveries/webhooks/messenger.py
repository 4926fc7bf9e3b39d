"""Meta's webhook for the Messenger page: subscription check (GET) and events (POST).

GET answers Meta's verification with hub.challenge when hub.verify_token matches MESSENGER_VERIFY_TOKEN. POSTs
are signed: X-Hub-Signature-256 is `sha256=` + the hex HMAC-SHA256 of the raw body keyed with the app secret.
https://developers.facebook.com/docs/messenger-platform/webhooks
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import Counter

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from messaging_project.log_context import log_context

from ..instruments import webhook_events
from ..services.feedback import messenger_receipts_record
from ..services.inbound import inbound_record, keyword_of
from .signature_failures import signature_failure_record

logger = logging.getLogger(__name__)


def signature_valid(request: HttpRequest) -> bool:
    secret = settings.MESSENGER_APP_SECRET
    header = request.headers.get("X-Hub-Signature-256", "")
    if not (secret and header.startswith("sha256=")):
        return False
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return constant_time_compare(header.removeprefix("sha256="), expected)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def messenger_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return verify_subscription(request)
    with log_context(provider="messenger"):
        return receive_events(request)


def receive_events(request: HttpRequest) -> HttpResponse:
    if not signature_valid(request):
        logger.warning("Refused a Messenger webhook with a missing or wrong X-Hub-Signature-256")
        signature_failure_record()
        return HttpResponseForbidden("Invalid signature.")
    try:
        payload = json.loads(request.body)
    except ValueError:
        return HttpResponse("Expected JSON.", status=400)
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries or []:
        for event in entry.get("messaging") or []:
            with log_context(recipient=str((event.get("sender") or {}).get("id") or "")):
                record_event(event)
    return HttpResponse("EVENT_RECEIVED")


def verify_subscription(request: HttpRequest) -> HttpResponse:
    token = settings.MESSENGER_VERIFY_TOKEN
    given = request.GET.get("hub.verify_token", "")
    if request.GET.get("hub.mode") == "subscribe" and token and constant_time_compare(given, token):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponseForbidden("Verification failed.")


def record_event(event: dict) -> None:
    psid = str((event.get("sender") or {}).get("id") or "")
    if not psid:
        return
    if "delivery" in event or "read" in event:
        kind = "delivery" if "delivery" in event else "read"
        details = event[kind] or {}
        outcomes = messenger_receipts_record(
            psid=psid, kind=kind, watermark=int(details.get("watermark") or 0), mids=list(details.get("mids") or [])
        )
        for outcome, count in Counter(outcomes).items():
            webhook_events.labels("messenger", "delivered" if kind == "delivery" else "read", outcome).inc(count)
    elif "message" in event and not (event["message"] or {}).get("is_echo"):
        message = event["message"]
        text = message.get("text", "")
        inbound_record(
            channel="messenger",
            sender=psid,
            recipient=str((event.get("recipient") or {}).get("id") or ""),
            body=text,
            media_urls=[
                a["payload"]["url"] for a in message.get("attachments") or [] if a.get("payload", {}).get("url")
            ],
            keyword=keyword_of(text),
            provider="messenger",
            provider_message_id=message.get("mid", ""),
            data={"timestamp": event.get("timestamp")},
            source="Messenger message",
        )
        webhook_events.labels("messenger", "inbound", "applied").inc()
