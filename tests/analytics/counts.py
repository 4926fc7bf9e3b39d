"""Independent counts over the messages, their timelines and the STOP replies, for comparing with the rollups.

Written from the models alone, without analytics' own code, so that a wrong rollup cannot hide behind it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

from django.db.models import Count

from analytics.models import HourlyRollup, MinuteRollup
from deliveries.models import InboundMessage, Message, MessageEvent, Suppression


def _hour(at):
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def expected_by_hour() -> Counter:
    """(hour, channel, campaign id, metric) -> count, for the status and report metrics."""
    expected: Counter = Counter()
    statuses = MessageEvent.objects.exclude(to_status="").values_list(
        "created_at", "to_status", "message__channel", "message__campaign_id"
    )
    for at, status, channel, campaign_id in statuses:
        expected[(_hour(at), channel, campaign_id, status)] += 1
    reports = MessageEvent.objects.filter(kind="provider").values_list(
        "created_at", "data", "message__channel", "message__campaign_id"
    )
    for at, data, channel, campaign_id in reports:
        metric = {"bounced": "bounced", "complained": "complained", "unsubscribed": "opted_out"}.get(data["event"])
        if metric:
            expected[(_hour(at), channel, campaign_id, metric)] += 1
    unsubscribes = MessageEvent.objects.filter(kind="note", data__event="unsubscribed").values_list(
        "created_at", "message__channel", "message__campaign_id"
    )
    for at, channel, campaign_id in unsubscribes:
        expected[(_hour(at), channel, campaign_id, "opted_out")] += 1
    for at, channel in InboundMessage.objects.filter(keyword="stop").values_list("received_at", "channel"):
        expected[(_hour(at), channel, None, "opted_out")] += 1
    return expected


def expected_engaged() -> Counter:
    """(channel, campaign id, metric) -> messages opened or clicked, from the messages' own counters."""
    expected: Counter = Counter()
    for metric, field in (("opened", "first_opened_at"), ("clicked", "first_clicked_at")):
        rows = (
            Message.objects.filter(**{f"{field}__isnull": False})
            .values_list("channel", "campaign_id")
            .annotate(n=Count("pk"))
        )
        for channel, campaign_id, n in rows:
            expected[(channel, campaign_id, metric)] = n
    return expected


def rolled_up_by_hour(metrics=None) -> Counter:
    rows = HourlyRollup.objects.all()
    if metrics is not None:
        rows = rows.filter(metric__in=metrics)
    return Counter(
        {(r.hour, r.channel, r.campaign_id, r.metric): r.count for r in rows if r.metric not in ("opened", "clicked")}
    )


def rolled_up_engaged() -> Counter:
    found: Counter = Counter()
    for r in HourlyRollup.objects.filter(metric__in=["opened", "clicked"]):
        found[(r.channel, r.campaign_id, r.metric)] += r.count
    return found


def minute_totals() -> Counter:
    found: Counter = Counter()
    for r in MinuteRollup.objects.exclude(metric__startswith="lag_"):
        found[(r.channel, r.metric)] += r.count
    return found


def hourly_totals() -> Counter:
    found: Counter = Counter()
    for r in HourlyRollup.objects.all():
        found[(r.channel, r.metric)] += r.count
    return found


def opted_out_addresses() -> int:
    return Suppression.objects.filter(reason="opt_out").count()
