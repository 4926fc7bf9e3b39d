"""Reads: what happened to a set of messages, for the admin and the API."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum

from .models import Message, Status


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
