"""The rollup job: counts what the timeline (MessageEvent) and the STOP replies (InboundMessage) record into the
hourly and per-minute rollups, incrementally, exactly once (analytics.services.cursor says how).

Run by every dispatcher (DISPATCHER_PERIODIC_TASKS: `rollup_tick`, a bounded slice each ANALYTICS_ROLLUP_INTERVAL)
and by `manage.py rollup_analytics` (until caught up). It never writes in the send path's transactions: a hot rollup
row there would make every worker wait for the others.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from deliveries.models import InboundMessage, Message, MessageEvent

from ..metrics import METRICS, lag_bucket_metric
from ..models import HourlyRollup, MinuteRollup
from .cursor import cursor_locked, rows_not_yet_counted

EVENTS_CURSOR = "message_events"
INBOUND_CURSOR = "inbound_messages"
EVENT_FIELDS = (
    "pk",
    "kind",
    "to_status",
    "data",
    "created_at",
    "message_id",
    "message__channel",
    "message__campaign_id",
    "message__priority",
)
INBOUND_FIELDS = ("pk", "channel", "keyword", "received_at")
# Provider reports counted, by the event they report (feedback's words), and the metric they count as.
REPORT_METRICS = {"bounced": "bounced", "complained": "complained", "unsubscribed": "opted_out"}
ENGAGEMENT_METRICS = {"opened", "clicked"}
# Rows read per transaction; the dispatcher's slice stops after a batch once this many seconds have gone.
BATCH_SIZE = 5000
TICK_BUDGET_SECONDS = 1.0

HourKey = tuple[datetime, str, int | None, str]
MinuteKey = tuple[datetime, str, str, str]  # minute, channel, priority, metric


def event_metrics(kind: str, to_status: str, data: Any) -> list[str]:
    """The metrics one timeline event counts towards: the status it moved to, and what a provider reported."""
    metrics = [to_status] if to_status in METRICS else []
    if kind in (MessageEvent.Kind.PROVIDER, MessageEvent.Kind.ENGAGEMENT) and isinstance(data, dict):
        # `event` is feedback's own word; rows written before it was recorded carry the provider's.
        event = data.get("event") or data.get("event_type") or data.get("status") or ""
        if kind == MessageEvent.Kind.ENGAGEMENT:
            if event in ENGAGEMENT_METRICS and data.get("first"):
                metrics.append(event)
        elif event in REPORT_METRICS:
            metrics.append(REPORT_METRICS[event])
    elif kind == MessageEvent.Kind.NOTE and isinstance(data, dict) and data.get("event") == "unsubscribed":
        metrics.append("opted_out")  # the unsubscribe page's (or a one-click post's), once per message
    return metrics


@dataclass
class Counts:
    """What one batch adds to the rollups. Minutes older than `minutes_from` are not kept in the minute rollup."""

    minutes_from: datetime
    hourly: Counter[HourKey] = field(default_factory=Counter)
    minute: Counter[MinuteKey] = field(default_factory=Counter)

    def add(self, at: datetime, channel: str, campaign_id: int | None, metric: str, priority: str = "") -> None:
        at = at.astimezone(UTC)
        self.hourly[(at.replace(minute=0, second=0, microsecond=0), channel, campaign_id, metric)] += 1
        self.add_minute(at, channel, metric, priority)

    def add_minute(self, at: datetime, channel: str, metric: str, priority: str = "") -> None:
        if at >= self.minutes_from:
            self.minute[(at.astimezone(UTC).replace(second=0, microsecond=0), channel, priority, metric)] += 1

    def add_events(self, rows: Iterable[tuple[Any, ...]]) -> None:
        sent: list[tuple[int, datetime, str, str]] = []
        for _pk, kind, to_status, data, at, message_id, channel, campaign_id, priority in rows:
            for metric in event_metrics(kind, to_status, data):
                self.add(at, channel, campaign_id, metric, priority)
            if to_status == "sent" and at >= self.minutes_from:
                sent.append((message_id, at, channel, priority))
        if sent:
            # When each was due, read for these messages alone: two more timestamps on every event row read were
            # a third of a backfill's time (psycopg's timestamp loader).
            due = dict(
                Message.objects.filter(pk__in={message_id for message_id, _, _, _ in sent})
                .annotate(due=Coalesce("send_at", "created_at"))
                .values_list("pk", "due")
            )
            for message_id, at, channel, priority in sent:
                lag = max((at - due[message_id]).total_seconds(), 0.0)
                self.add_minute(at, channel, lag_bucket_metric(lag), priority)

    def add_replies(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for _pk, channel, keyword, received_at in rows:
            if keyword == InboundMessage.Keyword.STOP:
                self.add(received_at, channel, None, "opted_out")


def rollup_batch(*, limit: int = BATCH_SIZE, now: datetime | None = None) -> int:
    """Count up to `limit` new rows of each table read (and every late one) into the rollups, in one transaction.
    Returns how many rows it read."""
    now = now or timezone.now()
    counts = Counts(minutes_from=_minutes_kept_from(now))
    with transaction.atomic():
        # Always this order, so that two jobs never wait for each other's second lock.
        events = rows_not_yet_counted(
            cursor_locked(EVENTS_CURSOR), MessageEvent.objects.all(), EVENT_FIELDS, limit=limit, now=now
        )
        replies = rows_not_yet_counted(
            cursor_locked(INBOUND_CURSOR), InboundMessage.objects.all(), INBOUND_FIELDS, limit=limit, now=now
        )
        counts.add_events(events)
        counts.add_replies(replies)
        _add(HourlyRollup, ("hour", "channel", "campaign_id", "metric"), counts.hourly)
        _add(MinuteRollup, ("minute", "channel", "priority", "metric"), counts.minute)
    return max(len(events), len(replies))


def analytics_rollup(*, budget_seconds: float | None = None, limit: int = BATCH_SIZE) -> int:
    """Count everything not yet counted (or stop after the batch that passes `budget_seconds`), then drop the
    minute rollup's rows older than ANALYTICS_MINUTE_RETENTION_HOURS. Returns how many rows it read."""
    started = time.monotonic()
    total = 0
    while True:
        read = rollup_batch(limit=limit)
        total += read
        if read < limit or (budget_seconds is not None and time.monotonic() - started >= budget_seconds):
            break
    MinuteRollup.objects.filter(minute__lt=_minutes_kept_from(timezone.now())).delete()
    return total


def rollup_tick() -> None:
    """The dispatcher's periodic task: a bounded slice, so that a backfill never holds up due messages."""
    analytics_rollup(budget_seconds=TICK_BUDGET_SECONDS)


def _minutes_kept_from(now: datetime) -> datetime:
    return now - timedelta(hours=settings.ANALYTICS_MINUTE_RETENTION_HOURS)


def _add(model: type[HourlyRollup] | type[MinuteRollup], key_fields: tuple[str, ...], counts: Counter[Any]) -> None:
    """Add `counts` (keyed by the values of `key_fields`) to the rollup `model`'s rows, creating those missing.
    Read and written under the cursors' lock: no other job writes the rollups meanwhile."""
    if not counts:
        return
    # campaign_id is left out of the filter: `IN` never matches a NULL. Matching is on the whole key below.
    narrowing = {
        f"{name}__in": {key[i] for key in counts} for i, name in enumerate(key_fields) if name != "campaign_id"
    }
    existing = {tuple(getattr(row, name) for name in key_fields): row for row in model.objects.filter(**narrowing)}
    changed, new = [], []
    for key, count in counts.items():
        row = existing.get(key)
        if row is None:
            new.append(model(**dict(zip(key_fields, key, strict=True)), count=count))
        else:
            row.count += count
            changed.append(row)
    model.objects.bulk_update(changed, ["count"], batch_size=500)  # type: ignore[arg-type]
    model.objects.bulk_create(new, batch_size=500)  # type: ignore[arg-type]
