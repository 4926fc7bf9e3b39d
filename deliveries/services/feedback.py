"""What providers tell us after they accept a message: delivery receipts, bounces, opens, clicks, read receipts.

Each provider's webhook turns what it received into `ProviderReport`s and hands them to `report_apply()`:

1. Find the message: by our own id when the provider echoes it back (Twilio's callback URL, anymail metadata),
   otherwise by the provider's message id. A report about an id we have not stored yet (the receipt overtook our
   worker) waits as a ProviderReceipt until the worker records that id.
2. Pass the gate: a timeline event whose `dedupe_key` is unique per message. A replayed or repeated report hits
   the constraint and changes nothing.
3. Move the status forward with `transition()`, which never goes backwards: a late `sent` after `delivered` is
   only a line on the timeline. Reports about an earlier attempt of a retried message change nothing either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging_project.log_context import log_context

from ..addresses import normalize_email
from ..backends import twilio_errors
from ..db.events import report_event_insert
from ..models import ERASED, AuditEntry, Message, MessageEvent, ProviderReceipt, Status, Suppression
from ..state import transition
from .audit import audit_record
from .suppression import suppression_add, suppression_lift

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before: nothing changed
    STALE = "stale"  # about an earlier attempt of a retried message: recorded, nothing changed
    PENDING = "pending"  # about a provider id we have not stored yet: kept for the worker
    UNKNOWN = "unknown"  # about no message of ours


# Report events that move a message, and where to. An open, a click, a complaint or a read receipt all mean the
# message arrived, so they count as delivery when no receipt said so first.
EVENT_STATUS = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "opened": Status.DELIVERED,
    "clicked": Status.DELIVERED,
    "complained": Status.DELIVERED,
    "unsubscribed": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "bounced": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
}
ENGAGEMENT_FIELDS = {"opened": ("opens_count", "first_opened_at"), "clicked": ("clicks_count", "first_clicked_at")}


@dataclasses.dataclass(frozen=True)
class ProviderReport:
    """One thing a provider told us about one message, in our words.

    `event` is one of EVENT_STATUS's keys or any other provider status (recorded, no status change).
    `dedupe_key` must be the same every time the provider reports the same thing.
    """

    provider: str
    event: str
    dedupe_key: str
    provider_message_id: str = ""
    message_id: int | None = None
    attempt: int | None = None
    error_code: str = ""
    reason: str = ""
    url: str = ""
    occurred_at: datetime | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ProviderReport:
        values = dict(values)
        values["occurred_at"] = parse_datetime(values["occurred_at"]) if values.get("occurred_at") else None
        return cls(**values)


def report_apply(report: ProviderReport, *, keep_if_unknown: bool = True) -> Outcome:
    """Apply one provider report to its message. Safe to call any number of times with the same report."""
    message = _message_for(report)
    if message is None:
        if not (keep_if_unknown and report.provider_message_id):
            return Outcome.UNKNOWN
        receipt = ProviderReceipt.objects.create(
            provider=report.provider, provider_message_id=report.provider_message_id, report=report.as_json()
        )
        # The worker stores the id and then looks for receipts; we store the receipt and then look for the id.
        # Whichever of us goes second sees the other's write, so the receipt is never left behind.
        message = _message_for(report)
        if message is None:
            return Outcome.PENDING
        receipt.delete()
    with log_context(message_id=message.pk, campaign_id=message.campaign_id):  # what is logged meanwhile is about it
        return _apply_to(message, report)


def receipts_apply_pending(*, provider: str, provider_message_ids: Iterable[str]) -> int:
    """Apply the receipts that arrived before the worker stored these provider ids. One small query when there are
    none waiting for this provider."""
    ids = [pmid for pmid in provider_message_ids if pmid]
    if not ids or not ProviderReceipt.objects.filter(provider=provider).exists():
        return 0  # the usual case, answered without sending hundreds of ids to the database
    receipts = list(
        ProviderReceipt.objects.filter(provider=provider, provider_message_id__in=ids).order_by("created_at", "pk")
    )
    for receipt in receipts:
        report_apply(ProviderReport.from_json(receipt.report), keep_if_unknown=False)
    ProviderReceipt.objects.filter(pk__in=[r.pk for r in receipts]).delete()
    return len(receipts)


def receipts_prune(*, older_than: timedelta = timedelta(days=2)) -> int:
    """Forget receipts no message ever claimed (messages another system sent from the same account)."""
    deleted, _ = ProviderReceipt.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


def _message_for(report: ProviderReport) -> Message | None:
    if report.message_id is not None:
        return Message.objects.filter(pk=report.message_id).first()
    if report.provider_message_id:
        return Message.objects.filter(provider=report.provider, provider_message_id=report.provider_message_id).first()
    return None


def _is_stale(message: Message, report: ProviderReport) -> bool:
    """A report about an earlier attempt (the message was retried since) must not move the current one."""
    if report.attempt is not None and report.attempt != message.attempts:
        return True
    return bool(
        report.provider_message_id
        and message.provider_message_id
        and report.provider_message_id != message.provider_message_id
        and message.status != Status.SENDING
    )


def _apply_to(message: Message, report: ProviderReport) -> Outcome:
    stale = _is_stale(message, report)
    kind = MessageEvent.Kind.ENGAGEMENT if report.event in ENGAGEMENT_FIELDS else MessageEvent.Kind.PROVIDER
    # A late report about an erased person's message counts, but its payload and link (their address, their IP
    # address, their URL) are not kept: services.erasure blanked the rest of the timeline already.
    # Nor its reason: a bounce's diagnostic or a provider's error text may quote the address ("<ada@...>: no such
    # user"). Only codes are kept, on the timeline and on the message (its status detail, last_error_message).
    if message.recipient == ERASED:
        report = dataclasses.replace(report, reason="", url="", data={})
    payload = report.data
    detail = _describe(report, stale=stale)
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = report_event_insert(
                    message,
                    kind=kind,
                    code=report.error_code,
                    detail=detail,
                    # `event` in our words, which analytics counts (bounced, opened, unsubscribed, ...).
                    data={"provider_message_id": report.provider_message_id, **payload, "event": report.event},
                    dedupe_key=report.dedupe_key[:200],
                )
        except IntegrityError:
            return Outcome.DUPLICATE
        if stale:
            return Outcome.STALE
        if report.event in ENGAGEMENT_FIELDS and _count_engagement(message, report):
            # The message's first open (or click), marked so that analytics counts messages opened, not opens.
            MessageEvent.objects.filter(pk=event.pk).update(data={**event.data, "first": True})
        _move(message, report)
    return Outcome.APPLIED


def _count_engagement(message: Message, report: ProviderReport) -> bool:
    """Count an open or click on the message; True when it is the message's first (the row lock decides)."""
    count_field, first_field = ENGAGEMENT_FIELDS[report.event]
    when = report.occurred_at or timezone.now()
    first = Message.objects.filter(pk=message.pk, **{f"{first_field}__isnull": True}).update(
        **{count_field: F(count_field) + 1, first_field: when}
    )
    if not first:
        Message.objects.filter(pk=message.pk).update(**{count_field: F(count_field) + 1})
    return bool(first)


def _move(message: Message, report: ProviderReport) -> None:
    to_status = EVENT_STATUS.get(report.event)
    if to_status is not None:
        fields: dict[str, Any] = {"lease_expires_at": None}
        if report.provider_message_id:
            fields.update(provider=report.provider, provider_message_id=report.provider_message_id)
        if to_status in (Status.UNDELIVERED, Status.FAILED):
            fields.update(last_error_code=report.error_code, last_error_message=report.reason)
        detail = _status_detail(report, to_status)
        moved = []
        if to_status != Status.SENT:
            moved = transition(
                [message.pk],
                to_status=to_status,
                from_statuses=[Status.SENT],
                fields=fields,
                code=report.error_code,
                detail=detail,
            )
        if not moved:
            # Still `sending`: the receipt overtook the worker, which will find the message moved on.
            transition(
                [message.pk],
                to_status=to_status,
                from_statuses=[Status.SENDING],
                fields={**fields, "sent_at": timezone.now()} if to_status != Status.SENT else fields,
                code=report.error_code,
                detail=detail,
            )
    if report.event == "read":
        Message.objects.filter(pk=message.pk, read_at=None).update(read_at=report.occurred_at or timezone.now())


def _describe(report: ProviderReport, *, stale: bool) -> str:
    text = f"{report.provider.title()}: {report.event.replace('_', ' ')}"
    if report.url:
        text += f" {report.url}"
    if report.reason:
        text += f" ({report.reason})"
    if stale:
        text += ". About an earlier attempt of this message, so it changes nothing."
    return text


def _status_detail(report: ProviderReport, to_status: str) -> str:
    who = report.provider.title()
    if to_status in (Status.UNDELIVERED, Status.FAILED):
        code = f" ({who} error {report.error_code})" if report.error_code else ""
        return f"{to_status.title()}: {report.reason or 'no reason given'}{code}"
    if report.event in ("delivered", "sent"):
        return f"{who} reports the message {report.event}."
    return f"Delivered: {who} reports it {report.event}."


def _when(timestamp: str | int | float | None) -> datetime | None:
    if timestamp is None or timestamp == "":
        return None
    try:
        return datetime.fromtimestamp(float(timestamp) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


# --- Twilio (SMS and WhatsApp) ------------------------------------------------------------------------------

# Twilio's statuses that only make a line on the timeline: queued, accepted, scheduled, sending, canceled, ...
TWILIO_EVENTS = {"sent", "delivered", "undelivered", "failed", "read"}


def twilio_status_record(*, params: dict[str, str], message_id: int | None, attempt: int | None) -> Outcome:
    """A Twilio status callback (already verified). `message_id` and `attempt` come from our callback URL."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if not (sid and status):
        return Outcome.UNKNOWN
    error_code = params.get("ErrorCode") or ""
    if error_code == "0":
        error_code = ""
    report = ProviderReport(
        provider="twilio",
        event=status if status in TWILIO_EVENTS else status or "unknown",
        dedupe_key=f"twilio:{sid}:{status}",
        provider_message_id=sid,
        message_id=message_id,
        attempt=attempt,
        error_code=error_code,
        reason=twilio_errors.reason_for(error_code, fallback=params.get("ErrorMessage", "")) if error_code else "",
        data={"status": status, **({"error_code": error_code} if error_code else {})},
    )
    return report_apply(report)


# --- Email through anymail -----------------------------------------------------------------------------------

# Bounce types that are not permanent, though some ESPs (Postmark) report them as `bounced`.
SOFT_BOUNCE_TYPES = {"SoftBounce", "Transient", "DnsError", "AutoResponder"}
# What an event says about the address, for the suppression list.
REJECT_SUPPRESSION = {
    "invalid": Suppression.Reason.HARD_BOUNCE,
    "bounced": Suppression.Reason.HARD_BOUNCE,
    "spam": Suppression.Reason.COMPLAINT,
    "unsubscribed": Suppression.Reason.OPT_OUT,
}


def email_tracking_record(*, event: Any, esp_name: str) -> Outcome:
    """An anymail tracking event (already authenticated by anymail): update the message and the suppression list."""
    provider = esp_name.lower()
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    event_type = event.event_type
    if event_type == "bounced" and esp_event.get("Type") in SOFT_BOUNCE_TYPES:
        event_type = "soft_bounced"
    metadata = event.metadata or {}
    # Anymail gives an event id only where the ESP has one (Postmark: bounces). Otherwise the payload itself
    # identifies the event: a retried webhook carries the very same payload.
    event_key = (
        event.event_id
        or hashlib.sha256(json.dumps(event.esp_event, sort_keys=True, default=str).encode()).hexdigest()[:40]
    )
    reason = event.description or event.mta_response or (event.reject_reason or "")
    report = ProviderReport(
        provider=provider,
        event=event_type,
        dedupe_key=f"{provider}:{event_type}:{event_key}",
        provider_message_id=event.message_id or "",
        message_id=_int_or_none(metadata.get("tidings_message_id")),
        attempt=_int_or_none(metadata.get("tidings_attempt")),
        error_code=str(esp_event.get("TypeCode") or event.reject_reason or "") if event_type == "bounced" else "",
        reason=str(reason)[:1000] if event_type in ("bounced", "rejected", "failed", "soft_bounced") else "",
        url=event.click_url or "",
        occurred_at=event.timestamp,
        data={
            "event_type": event.event_type,
            **({"reject_reason": event.reject_reason} if event.reject_reason else {}),
        },
    )
    # The status change and the suppression commit together: committed apart, a crash between them left a bounced
    # address off the list for good (the ESP's retry is then a duplicate), and a reader could see one without the
    # other.
    with transaction.atomic():
        # Email tracking always names our message in metadata, so an unknown id is not worth keeping for later.
        outcome = report_apply(report, keep_if_unknown=report.message_id is None)
        if outcome != Outcome.DUPLICATE:
            _email_suppression_update(event, event_type, provider, message_id=report.message_id)
    return outcome


def _email_suppression_update(event: Any, event_type: str, provider: str, *, message_id: int | None) -> None:
    if not event.recipient:
        return
    try:
        address = normalize_email(event.recipient)
    except ValidationError:  # the ESP sent something that is not an address: nothing to suppress
        return
    reason = {
        "bounced": Suppression.Reason.HARD_BOUNCE,
        "complained": Suppression.Reason.COMPLAINT,
        "unsubscribed": Suppression.Reason.OPT_OUT,
    }.get(event_type)
    if event_type == "rejected":
        reason = REJECT_SUPPRESSION.get(event.reject_reason or "")
    if reason is None and event_type != "subscribed":
        return  # an open, a click, a delivery: the list is not concerned, and the message not read
    message = Message.objects.filter(pk=message_id).first() if message_id is not None else None
    # About an erased person's message: the list keeps their address as a hash only, and nothing quotes it.
    erased = message is not None and message.recipient == ERASED
    if event_type == "subscribed":
        if suppression_lift(channel="email", address=address):
            # Sending to someone again is what a forged event would want: recorded, unlike an opt-out.
            audit_record(
                action=AuditEntry.Action.SUPPRESSION_LIFTED,
                target=message,
                actor=f"{provider} tracking event",
                details={"channel": "email", "address": ERASED if erased else address, "event_type": event_type},
            )
        return
    if reason is not None:
        suppression_add(
            channel="email",
            address=address,
            reason=reason,
            source=f"{provider.title()} {event_type}",
            detail=str(event.description or event.mta_response or "")[:1000],
            message=message,
            erased=erased,
        )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- Messenger (Meta's Send API) ------------------------------------------------------------------------------


def messenger_receipts_record(*, psid: str, kind: str, watermark: int, mids: list[str]) -> list[Outcome]:
    """A Messenger `delivery` or `read` webhook event for one person (PSID).

    Deliveries name their message ids (mids); reads only give a watermark: every message to that person whose
    sending started before it was read. Messages that were never accepted are left alone.
    """
    when = _when(watermark)
    event = "delivered" if kind == "delivery" else "read"
    if not mids and when is not None:
        statuses = [Status.SENT] if event == "delivered" else [Status.SENT, Status.DELIVERED]
        mids = list(
            Message.objects.filter(
                channel="messenger", recipient=psid, provider="messenger", status__in=statuses, sending_at__lte=when
            )
            .exclude(provider_message_id="")
            .values_list("provider_message_id", flat=True)[:1000]
        )
    return [
        report_apply(
            ProviderReport(
                provider="messenger",
                event=event,
                dedupe_key=f"messenger:{mid}:{event}",
                provider_message_id=mid,
                occurred_at=when,
                data={"watermark": watermark},
            ),
            # A read watermark is not about one message: nothing to keep for later.
            keep_if_unknown=event == "delivered",
        )
        for mid in mids
    ]
