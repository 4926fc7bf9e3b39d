"""Old messages made fast for the archiving tests (rows written as given, events included), and what the tests
compare before and after: every row of the hot tables, and the figures the dashboard and campaign pages show."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils import timezone

from analytics import selectors as analytics
from campaigns import selectors as campaign_figures
from campaigns.models import Campaign
from deliveries.archiving.rows import rows_insert_exact
from deliveries.db.row_inserts import ids_reserve
from deliveries.models import Batch, Message, MessageEvent, Status
from deliveries.selectors import batch_status_counts

# Each message's status and error code, in turn; a sent message gets sent and a receipt event, others one event.
OUTCOMES = [
    (Status.DELIVERED, ""),
    (Status.DELIVERED, ""),
    (Status.UNDELIVERED, "30006"),
    (Status.FAILED, "21211"),
    (Status.CANCELLED, ""),
    (Status.SUPPRESSED, ""),
    (Status.DELIVERED, ""),
    (Status.FAILED, "30003"),
]
BODIES = ["Hello there", "Ünïcödé body that is UCS-2 " * 3, "A long GSM body " * 12]


def _ids(model: type[Any], count: int) -> list[int]:
    if connection.vendor == "postgresql":
        return ids_reserve(model, count)
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return list(range(last + 1, last + 1 + count))


def _row(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def seed_old_messages(
    count: int,
    *,
    days_old: float = 100,
    campaign: Campaign | None = None,
    batch: Batch | None = None,
    chains: int = 0,
) -> list[int]:
    """`count` finished messages created up to `days_old` days ago (spread over up to three days before), with
    their events;
    the first `chains` pairs are a parent and a message depending on it. Returns their ids."""
    ids = _ids(Message, count)
    step = min(257.3, 3 * 86400 / count)  # seconds between two messages: at most three days in all
    start = timezone.now() - timedelta(days=days_old) - timedelta(seconds=step * count)
    template_message = _row(Message(channel="sms", recipient="+14155550100"))
    template_event = _row(MessageEvent(message_id=0))
    messages, events = [], []
    for number, pk in enumerate(ids):
        status, code = OUTCOMES[number % len(OUTCOMES)]
        created = start + timedelta(seconds=number * step, microseconds=number % 997)
        row = {
            **template_message,
            "id": pk,
            "recipient": f"+1415{number:07d}",
            "body": BODIES[number % len(BODIES)],
            "status": status,
            "last_error_code": code,
            "last_error_message": f"error {code} for {number}" if code else "",
            "campaign_id": campaign.pk if campaign and number % 3 == 0 else None,
            "batch_id": batch.pk if batch and number % 5 == 1 else None,
            "metadata": {"n": number, "nested": {"list": [1, 2.5, None, "ü"]}},
            "context": {"name": f"Person {number}"} if number % 2 else {},
            "depends_on_delay": timedelta(minutes=5) if number % 11 == 0 else None,
            "created_at": created,
            "updated_at": created + timedelta(minutes=3),
            "sent_at": created + timedelta(seconds=2) if status in (Status.DELIVERED, Status.UNDELIVERED) else None,
            "delivered_at": created + timedelta(seconds=9) if status == Status.DELIVERED else None,
        }
        if number < 2 * chains and number % 2 == 1:
            row["depends_on_id"] = ids[number - 1]
            row["depends_on_condition"] = "delivered"
        messages.append(row)
        at = created + timedelta(seconds=1)
        events.append({**template_event, "message_id": pk, "to_status": "queued", "created_at": at})
        if row["sent_at"]:
            events.append({**template_event, "message_id": pk, "to_status": "sent", "created_at": row["sent_at"]})
        final_at = row["delivered_at"] or created + timedelta(seconds=10)
        events.append({**template_event, "message_id": pk, "to_status": status, "code": code, "created_at": final_at})
    # Dependent messages are made after their parent: the parent's id is the lower one, as the API makes them.
    rows_insert_exact(Message, messages)
    for event, pk in zip(events, _ids(MessageEvent, len(events)), strict=True):
        event["id"] = pk
    rows_insert_exact(MessageEvent, events)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the planner's statistics, as autovacuum would keep them
            cursor.execute("ANALYZE deliveries_message, deliveries_messageevent")
    return ids


def _attnames(model: type[Any]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def table_dump() -> dict[str, list[tuple]]:
    """Every row of the hot tables, every column, in id order."""
    return {
        model.__name__: list(model.objects.order_by("pk").values_list(*_attnames(model)))
        for model in (Message, MessageEvent)
    }


def figures(campaign: Campaign, batch: Batch | None = None) -> dict[str, Any]:
    """What the dashboard (analytics' selectors) and the campaign and batch pages show."""
    # Fixed ends (tomorrow's midnight), so the figures read at different moments of a test cover the same range.
    now = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    progress = campaign_figures.campaign_progress(campaign=campaign)
    return {
        "totals": analytics.totals(),
        "trends": analytics.trends(now - timedelta(days=200), now, bucket="day"),
        "trends_sms": analytics.trends(now - timedelta(days=200), now, bucket="hour", channel="sms")["totals"],
        "funnel": analytics.campaign_funnel(campaign.pk),
        "since_2000": analytics.trends(start, now, bucket="day")["totals"],
        "progress": progress,
        "failures": campaign_figures.campaign_failures(campaign=campaign),
        "segments": campaign_figures.campaign_segments(campaign=campaign, sent_count=progress["sent"]),
        "segments_counted": campaign_figures.campaign_segments(campaign=campaign),
        "engagement": campaign_figures.campaign_engagement(campaign_id=campaign.pk),
        "series": campaign_figures.campaign_progress_series(campaign=campaign),
        "batch": batch_status_counts(batch=batch) if batch else None,
    }


def archived_ids(directory: Path) -> list[int]:
    """The message ids in every archive file of `directory`, as often as they occur."""
    found = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            found += [line["pk"] for line in map(json.loads, handle) if line["model"] == "deliveries.message"]
    return found
