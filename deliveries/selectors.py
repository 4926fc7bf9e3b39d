"""Reads for the operations console and the API: what happened to messages, at a glance."""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from .addresses import normalize_email, normalize_whatsapp
from .health import workers_status
from .models import IN_FLIGHT_STATUSES, ArchivedMessageTally, Message, Status

# An id typed in the search: ASCII digits only (str.isdigit() takes "²", which int() refuses), short enough for a
# bigint.
DIGITS = re.compile(r"[0-9]{1,18}")


def message_status_counts(**filters: Any) -> dict[str, int]:
    """How many of the messages `filters` select are in each status now (one GROUP BY)."""
    return dict(Message.objects.filter(**filters).order_by().values_list("status").annotate(count=Count("pk")))


def archived_status_counts(**filters: Any) -> dict[str, int]:
    """How many archived messages of a campaign or bulk send (`campaign_id=` or `batch_id=`, with `status__in=`)
    were in each status when archived (the tallies deliveries.services.archive keeps)."""
    rows = ArchivedMessageTally.objects.filter(**filters).values_list("status").annotate(count=Sum("messages"))
    return {status: int(count) for status, count in rows.order_by()}


def counts_added(*counts: dict[str, int]) -> dict[str, int]:
    """Counts by status, summed (the hot rows' and the archived ones')."""
    total: dict[str, int] = {}
    for part in counts:
        for status, count in part.items():
            total[status] = total.get(status, 0) + count
    return total


def batch_status_counts(*, batch) -> dict[str, int]:
    """How many of a bulk send's messages are in each status now, the archived ones included."""
    return counts_added(message_status_counts(batch=batch), archived_status_counts(batch_id=batch.pk))


def delivery_overview(*, hours: int = 24) -> dict:
    """Counts by status for messages created in the last `hours`, an hourly series of sent and failed messages,
    and the queues as the workers see them."""
    now = timezone.now()
    since = now - timedelta(hours=hours)
    recent = Message.objects.filter(created_at__gte=since)
    by_status = dict(recent.values_list("status").annotate(n=Count("id")).order_by())
    counts = [{"status": s.value, "label": s.label, "count": by_status.get(s.value, 0)} for s in Status]
    total = sum(by_status.values())
    done = sum(by_status.get(s, 0) for s in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED))
    failed = by_status.get(Status.FAILED, 0) + by_status.get(Status.UNDELIVERED, 0)

    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    sent_by_hour = _per_hour(Message.objects.filter(sent_at__gte=start), "sent_at")
    failed_by_hour = _per_hour(
        Message.objects.filter(failed_at__gte=start, status__in=[Status.FAILED, Status.UNDELIVERED]), "failed_at"
    )
    series = []
    for i in range(hours):
        hour = start + timedelta(hours=i)
        series.append({"hour": hour, "sent": sent_by_hour.get(hour, 0), "failed": failed_by_hour.get(hour, 0)})
    peak = max((point["sent"] for point in series), default=0) or 1
    for point in series:
        point["sent_pct"] = round(100 * point["sent"] / peak)
        point["failed_pct"] = round(100 * point["failed"] / peak)
    return {
        "hours": hours,
        "total": total,
        "counts": counts,
        "failure_rate": round(100 * failed / done, 1) if done else 0.0,
        "pending": sum(by_status.get(s, 0) for s in (Status.SCHEDULED, Status.QUEUED, Status.SENDING)),
        "series": series,
        "peak": peak,
        "workers": workers_status(),
    }


def _per_hour(queryset, field: str) -> dict:
    rows = queryset.annotate(hour=TruncHour(field)).values("hour").annotate(n=Count("id")).order_by()
    return {row["hour"]: row["n"] for row in rows}


def message_outcome_summary(messages: QuerySet[Message]) -> dict:
    """Counts by status and engagement for these messages, in one query.

    Rates are shares of what they can be measured against: delivered of the messages providers reported on
    (delivered or undelivered), opened and clicked of the delivered emails. None when there is nothing to measure.
    """
    counts = messages.aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in Status.values},
        emails_delivered=Count("pk", filter=Q(channel="email", status=Status.DELIVERED)),
        opened=Count("pk", filter=Q(opens_count__gt=0)),
        clicked=Count("pk", filter=Q(clicks_count__gt=0)),
        read=Count("pk", filter=Q(read_at__isnull=False)),
        opens=Sum("opens_count", default=0),
        clicks=Sum("clicks_count", default=0),
    )

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    reported = counts[Status.DELIVERED] + counts[Status.UNDELIVERED]
    return {
        "total": counts["total"],
        "by_status": {status: counts[status] for status in Status.values},
        "opened": counts["opened"],
        "clicked": counts["clicked"],
        "read": counts["read"],
        "opens": counts["opens"],
        "clicks": counts["clicks"],
        "delivery_rate": share(counts[Status.DELIVERED], reported),
        "open_rate": share(counts["opened"], counts["emails_delivered"]),
        "click_rate": share(counts["clicked"], counts["emails_delivered"]),
    }


def message_search_condition(term: str) -> Q:
    """Messages a person may mean by `term`, each way exact so that an index answers it: the message's id (#12
    or 12), its recipient normalised as the API stores it (an email also wholly lowercased; a number in E.164),
    the provider's message id, or a campaign's id or name (campaign:12 or its name). Matches nothing if none."""
    term = term.replace("\x00", "").strip()  # PostgreSQL refuses a NUL in a string: it would be a 500
    if not term:
        return Q()
    recipients = sorted({term, *_recipient_forms(term)})
    # The recipient index leaves out the in-flight statuses (Message.Meta): settled messages are found through it,
    # in-flight ones through their status's own index, one status at a time, so that each arm of the OR has one.
    condition = Q(provider_message_id=term) | (Q(recipient__in=recipients) & ~Q(status__in=IN_FLIGHT_STATUSES))
    for status in IN_FLIGHT_STATUSES:
        condition |= Q(recipient__in=recipients, status=status)
    if DIGITS.fullmatch(term.lstrip("#")):
        condition |= Q(pk=int(term.lstrip("#")))
    campaign_term = term.removeprefix("campaign:").strip()
    campaigns = Message._meta.get_field("campaign").related_model._default_manager  # type: ignore[union-attr]
    if DIGITS.fullmatch(campaign_term) and term.startswith("campaign:"):
        condition |= Q(campaign_id=int(campaign_term))
    elif campaign_ids := list(campaigns.filter(name__iexact=campaign_term).values_list("pk", flat=True)[:20]):
        condition |= Q(campaign_id__in=campaign_ids)
    return condition


def _recipient_forms(term: str) -> set[str]:
    """The forms `term` is stored in if it is a recipient: what the API's normalisers make of it."""
    forms: set[str] = set()
    if "@" in term:
        with suppress(ValidationError):
            forms.add(normalize_email(term))
        forms.add(term.lower())
    elif any(ch.isdigit() for ch in term):
        with suppress(ValidationError):
            forms.add(normalize_whatsapp(term))  # E.164, with or without Twilio's "whatsapp:" prefix
    return forms
