"""The figures read from the rollups: never a count over the messages. Other apps read analytics through these.

Every metric of analytics.metrics.METRICS is present in what they return (0 when none). Times are aware datetimes;
hours and minutes are UTC, days the site's time zone (TIME_ZONE).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from content.models import Channel
from deliveries.models import InboundMessage, MessageEvent

from .metrics import LAG_BUCKET_BOUNDS, LAG_BUCKET_METRICS, METRICS
from .models import HourlyRollup, MinuteRollup, RollupCursor
from .services.cursor import oldest_not_yet_counted
from .services.rollup import EVENTS_CURSOR, INBOUND_CURSOR

BUCKETS = ("hour", "day")
# Channels that report opens and clicks: their deliveries are what open and click rates divide by.
ENGAGEMENT_CHANNELS = (Channel.EMAIL,)


def _zeros() -> dict[str, int]:
    return dict.fromkeys(METRICS, 0)


def _minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def outcomes_since(since: datetime, *, channel: str | None = None, priority: str | None = None) -> dict[str, int]:
    """Metric -> count since `since` (to the minute), from the minute rollup; of one channel, or of the messages of
    one priority (one queue), when given."""
    rows = MinuteRollup.objects.filter(minute__gte=_minute_floor(since), metric__in=METRICS)
    if channel is not None:
        rows = rows.filter(channel=channel)
    if priority is not None:
        rows = rows.filter(priority=priority)
    figures = _zeros()
    for metric, count in rows.values_list("metric").annotate(total=Sum("count")).values_list("metric", "total"):
        figures[metric] = int(count)
    return figures


def per_minute(minutes: int = 60, *, channel: str | None = None) -> list[dict[str, Any]]:
    """The last `minutes` minutes, this one included, oldest first: {"minute": datetime, <metric>: count, ...}."""
    count = max(minutes, 1)
    first = _minute_floor(timezone.now()) - timedelta(minutes=count - 1)
    series = {at: {"minute": at, **_zeros()} for at in (first + timedelta(minutes=i) for i in range(count))}
    rows = MinuteRollup.objects.filter(minute__gte=first, metric__in=METRICS)
    if channel is not None:
        rows = rows.filter(channel=channel)
    for minute, metric, count in (
        rows.values_list("minute", "metric").annotate(total=Sum("count")).values_list("minute", "metric", "total")
    ):
        if minute in series:
            series[minute][metric] = int(count)
    return list(series.values())


def schedule_lag(since: datetime) -> dict[str, Any]:
    """Seconds from when messages were due (send_at, or created_at) to `sent`, for those sent since `since`:
    {"p50", "p99", "count"}, the percentiles read from the minute rollup's histogram (None when nothing was sent)."""
    rows = MinuteRollup.objects.filter(minute__gte=_minute_floor(since), metric__in=LAG_BUCKET_METRICS)
    per_bucket = dict(rows.values_list("metric").annotate(total=Sum("count")).values_list("metric", "total"))
    counts = [int(per_bucket.get(metric, 0)) for metric in LAG_BUCKET_METRICS]
    total = sum(counts)
    return {"p50": _percentile(counts, 0.50), "p99": _percentile(counts, 0.99), "count": total}


def _percentile(counts: list[int], quantile: float) -> float | None:
    """The quantile of a histogram with LAG_BUCKET_BOUNDS, linear within its bucket (the open last one: its floor)."""
    total = sum(counts)
    if not total:
        return None
    rank = quantile * total
    below = 0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            lower = LAG_BUCKET_BOUNDS[index - 1] if index else 0.0
            upper = LAG_BUCKET_BOUNDS[index]
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / count
        below += count
    return LAG_BUCKET_BOUNDS[-2]


def totals() -> dict[tuple[str, str], int]:
    """(channel, metric) -> count since the rollups began, every channel and metric present."""
    figures = {(channel, metric): 0 for channel in Channel.values for metric in METRICS}
    rows = HourlyRollup.objects.values_list("channel", "metric").annotate(total=Sum("count"))
    for channel, metric, count in rows.values_list("channel", "metric", "total"):
        figures[(channel, metric)] = int(count)
    return figures


def campaign_funnel(campaign_id: int) -> dict[str, int]:
    """Metric -> count for one campaign's messages, all time."""
    figures = _zeros()
    rows = HourlyRollup.objects.filter(campaign_id=campaign_id).values_list("metric").annotate(total=Sum("count"))
    for metric, count in rows.values_list("metric", "total"):
        if metric in figures:
            figures[metric] = int(count)
    return figures


def rates(figures: dict[str, int], *, engaged_deliveries: int) -> dict[str, float | None]:
    """Delivery rate: delivered of those a provider settled (delivered or undelivered). Open and click rates:
    messages opened or clicked of those delivered on the channels that report opens. None where nothing to divide."""

    def ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return {
        "delivery_rate": ratio(figures["delivered"], figures["delivered"] + figures["undelivered"]),
        "open_rate": ratio(figures["opened"], engaged_deliveries),
        "click_rate": ratio(figures["clicked"], engaged_deliveries),
    }


def trends(start: datetime, end: datetime, *, bucket: str = "hour", channel: str | None = None) -> dict[str, Any]:
    """Counts and rates per hour or per day from `start` to `end` (the bucket holding `start` to the one before
    `end`), for one channel or all, from the hourly rollup:

    {"start", "end", "bucket", "channel",
     "rows": [{"start": datetime, <metric>: count, ..., "delivery_rate", "open_rate", "click_rate"}, ...],
     "totals": {<metric>: count, ..., "delivery_rate", "open_rate", "click_rate"}}

    Rates divide counts of the same bucket (a message sent late in one hour may be delivered in the next)."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    starts = _bucket_starts(start, end, bucket)
    by_bucket: dict[datetime, dict[str, int]] = {at: _zeros() for at in starts}
    engaged: dict[datetime, int] = defaultdict(int)
    rows = HourlyRollup.objects.filter(hour__gte=starts[0] if starts else start, hour__lt=end, metric__in=METRICS)
    if channel is not None:
        rows = rows.filter(channel=channel)
    grouped = rows.values_list("hour", "channel", "metric").annotate(total=Sum("count"))
    for hour, row_channel, metric, count in grouped.values_list("hour", "channel", "metric", "total"):
        at = _bucket_of(hour, bucket)
        if at not in by_bucket:
            continue
        by_bucket[at][metric] += int(count)
        if metric == "delivered" and row_channel in ENGAGEMENT_CHANNELS:
            engaged[at] += int(count)
    overall = _zeros()
    for figures in by_bucket.values():
        for metric, count in figures.items():
            overall[metric] += count
    return {
        "start": start,
        "end": end,
        "bucket": bucket,
        "channel": channel,
        "rows": [
            {"start": at, **figures, **rates(figures, engaged_deliveries=engaged[at])}
            for at, figures in by_bucket.items()
        ],
        "totals": {**overall, **rates(overall, engaged_deliveries=sum(engaged.values()))},
    }


def _bucket_of(at: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return _day_start(timezone.localtime(at).date())


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _bucket_starts(start: datetime, end: datetime, bucket: str) -> list[datetime]:
    starts = []
    if bucket == "hour":
        at = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while at < end:
            starts.append(at)
            at += timedelta(hours=1)
        return starts
    day = timezone.localtime(start).date()
    while _day_start(day) < end:
        starts.append(_day_start(day))
        day += timedelta(days=1)
    return starts


def rollup_lag_seconds() -> float | None:
    """How far the rollups trail: the age of the oldest event not counted yet (0.0 when caught up), or None when
    the rollup job has never run."""
    cursors = {cursor.name: cursor for cursor in RollupCursor.objects.filter(name__in=[EVENTS_CURSOR, INBOUND_CURSOR])}
    events = cursors.get(EVENTS_CURSOR)
    if events is None or events.ran_at is None:
        return None
    oldest = [oldest_not_yet_counted(events, MessageEvent.objects.all(), "created_at")]
    if INBOUND_CURSOR in cursors:
        oldest.append(oldest_not_yet_counted(cursors[INBOUND_CURSOR], InboundMessage.objects.all(), "received_at"))
    found = [at for at in oldest if at is not None]
    if not found:
        return 0.0
    return max((timezone.now() - min(found)).total_seconds(), 0.0)


def rollup_ran_at() -> datetime | None:
    """When the rollup job last ran, or None if never."""
    return RollupCursor.objects.filter(name=EVENTS_CURSOR).values_list("ran_at", flat=True).first()


# The most hours a campaign's series holds: its last two weeks (older hours are left out, not merged).
CAMPAIGN_SERIES_MAX_HOURS = 14 * 24


def campaign_series(
    campaign_id: int, metrics: tuple[str, ...], *, until: datetime | None = None
) -> list[dict[str, Any]]:
    """One campaign's counts per hour (UTC), oldest first, from its first hour in the rollup to the hour of
    `until` (default: its last hour in the rollup), every hour present: [{"hour": datetime, <metric>: count}, ...].
    Reads the campaign's rollup rows only (the hourly_rollup_campaign_id index); empty when it has none yet."""
    rows = HourlyRollup.objects.filter(campaign_id=campaign_id, metric__in=metrics)
    grouped = list(
        rows.values_list("hour", "metric").annotate(total=Sum("count")).values_list("hour", "metric", "total")
    )
    if not grouped:
        return []
    last = max(hour for hour, _metric, _count in grouped)
    if until is not None:
        last = max(last, until.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
    first = max(min(hour for hour, _metric, _count in grouped), last - timedelta(hours=CAMPAIGN_SERIES_MAX_HOURS - 1))
    hours = int((last - first) / timedelta(hours=1)) + 1
    points: dict[datetime, dict[str, Any]] = {
        at: {"hour": at, **dict.fromkeys(metrics, 0)} for at in (first + timedelta(hours=i) for i in range(hours))
    }
    for hour, metric, count in grouped:
        if hour in points:
            points[hour][metric] += int(count)
    return list(points.values())
