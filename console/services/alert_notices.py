"""Alert notices: the words, and sending them by email to ADMINS and as Slack-compatible JSON to ALERT_WEBHOOK_URL.

Each AlertEvent is a notice; a destination that took it is stamped (`emailed_at`, `posted_at`), one that refused it
is logged and tried again at the next check, for RETRY_FOR. A check holds a notice while sending it (a
conditional UPDATE of `claimed_until`), so two dispatchers never send one twice, and stops using a destination for
the rest of the check after its first failure, so a dead sink costs the dispatcher one timeout per check at most.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import F, Q
from django.utils import timezone

from ..models import AlertEvent, AlertEventKind
from .alert_rules import Finding

logger = logging.getLogger("console.alerts")

# A notice nobody could take for this long is stale news: it stays in the history, unsent.
RETRY_FOR = timedelta(hours=6)
# Longer than a webhook timeout and an email together; a check that died holding a notice frees it after this.
CLAIM_FOR = timedelta(seconds=120)
NOTICES_PER_CHECK = 20


def notice_text(finding: Finding, *, kind: str) -> str:
    """One line naming the alert and whether it fired or cleared, with the figure (and while firing, what to do)."""
    if kind == AlertEventKind.FIRED:
        return f"FIRING: {finding.title} ({finding.key}): {finding.detail}. Next: {finding.next_step}"
    return f"CLEARED: {finding.title} ({finding.key}): {finding.detail}."


def notices_send() -> int:
    """Send the notices still owed to a configured destination; returns how many were sent somewhere."""
    email, webhook = bool(settings.ADMINS), bool(settings.ALERT_WEBHOOK_URL)
    owed = Q(pk__in=[])
    if email:
        owed |= Q(emailed_at__isnull=True)
    if webhook:
        owed |= Q(posted_at__isnull=True)
    if not (email or webhook):
        return 0
    now = timezone.now()
    candidates = list(
        AlertEvent.objects.filter(owed, at__gte=now - RETRY_FOR)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("at", "id")
        .values_list("pk", flat=True)[:NOTICES_PER_CHECK]
    )
    failed: set[str] = set()
    sent = 0
    for pk in candidates:
        if not _claim(pk):
            continue  # another check holds it
        event = AlertEvent.objects.select_related("alert").get(pk=pk)
        stamps: dict[str, object] = {}
        errors = []
        if email and event.emailed_at is None and "email" not in failed:
            try:
                mail_admins(f"Alert {event.kind}: {event.alert.title}", event.text, fail_silently=False)
                stamps["emailed_at"] = timezone.now()
            except Exception as error:  # SMTP or the ESP: whatever refused it, try again next check
                failed.add("email")
                errors.append(f"email: {error.__class__.__name__}: {error}")
        if webhook and event.posted_at is None and "webhook" not in failed:
            try:
                _post(event.text)
                stamps["posted_at"] = timezone.now()
            except requests.RequestException as error:
                failed.add("webhook")
                errors.append(f"webhook: {_redacted(error)}")
        for error_text in errors:
            logger.error("Could not send the alert notice %s (%s); trying again at the next check", pk, error_text)
        tried = bool(stamps or errors)
        AlertEvent.objects.filter(pk=pk).update(
            claimed_until=None,
            **stamps,
            **({"attempts": F("attempts") + 1, "last_error": "; ".join(errors)} if tried else {}),
        )
        sent += bool(stamps)
    return sent


def _claim(pk: int) -> bool:
    now = timezone.now()
    return bool(
        AlertEvent.objects.filter(pk=pk)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + CLAIM_FOR)
    )


def _post(text: str) -> None:
    """Slack's incoming-webhook format, which Mattermost, Rocket.Chat, Teams' Slack-compatible hooks and most
    chat tools accept: {"text": ...}."""
    response = requests.post(
        settings.ALERT_WEBHOOK_URL,
        json={"text": f"[Tidings] {text}"},
        timeout=settings.ALERT_WEBHOOK_TIMEOUT,
        allow_redirects=False,
    )
    response.raise_for_status()


def _redacted(error: requests.RequestException) -> str:
    """The error without the webhook URL's path and query: in Slack's URLs they are the secret."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} from the webhook"
    url = urlsplit(settings.ALERT_WEBHOOK_URL)
    text = f"{error.__class__.__name__}: {error}"
    text = text.replace(settings.ALERT_WEBHOOK_URL, f"{url.scheme}://{url.netloc}/***")
    for secret in (f"{url.path}?{url.query}", url.path):
        if secret.strip("/?"):
            text = text.replace(secret, "/***")
    return text
