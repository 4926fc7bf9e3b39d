"""Spend per day and channel: what the messages sent cost, read from their costs (the rollups count messages, not
money, so this reads the messages themselves, as few columns as it can, and the dashboard keeps the figures in
the shared cache for SPEND_CACHE_SECONDS).

A message counts on the day it was sent (the site's time zone, TIME_ZONE) at the price its provider reported
(`actual_cost`) where known, else at the estimate it was given when created (`estimated_cost`); a message with
neither is counted as unpriced. Amounts are kept apart by currency: nothing here adds dollars to euros.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from redis.exceptions import RedisError

from content.models import Channel
from deliveries.models import Message

SPEND_DAYS = 30
SPEND_CACHE_SECONDS = 60
CACHE_KEY = "analytics:spend:v1"
ZERO = Decimal("0")


@dataclass
class Spend:
    """One channel's spend over a period in one currency: what providers reported, and estimates for the rest."""

    actual: Decimal = ZERO
    estimated: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.actual + self.estimated


@dataclass
class CurrencySpend:
    """Everything in one currency: per channel, each day's total (oldest first), today's and this month's."""

    daily: dict[str, list[Decimal]] = field(default_factory=dict)
    today: dict[str, Spend] = field(default_factory=dict)
    month: dict[str, Spend] = field(default_factory=dict)


@dataclass
class SpendSummary:
    days: list[date]
    currencies: dict[str, CurrencySpend]
    # Messages sent this month or in the last SPEND_DAYS days with neither a price nor an estimate.
    unpriced: int


def spend_summary(*, now: datetime | None = None) -> SpendSummary:
    """The last SPEND_DAYS days (today included) per day, channel and currency, and today's and this month's
    spend per channel; in the shared cache for SPEND_CACHE_SECONDS when asked about the present."""
    if now is not None:
        return _spend_summary(now)
    try:
        cached = cache.get(CACHE_KEY)
    except RedisError:
        cached = None
    if cached is not None:
        return cached
    summary = _spend_summary(timezone.now())
    with contextlib.suppress(RedisError):  # each view then builds its own
        cache.set(CACHE_KEY, summary, timeout=SPEND_CACHE_SECONDS)
    return summary


def _spend_summary(now: datetime) -> SpendSummary:
    today = timezone.localdate(now)
    days = [today - timedelta(days=back) for back in range(SPEND_DAYS - 1, -1, -1)]
    month_start = today.replace(day=1)
    first_day = min(days[0], month_start)
    tz = timezone.get_current_timezone()
    sent = Message.objects.filter(
        sent_at__gte=timezone.make_aware(datetime.combine(first_day, time.min), tz), sent_at__isnull=False
    )
    # Per (day, channel, currency, "actual" or "estimated"): the sum.
    sums: dict[tuple[date, str, str, str], Decimal] = defaultdict(lambda: ZERO)
    for kind, rows, amount, currency in (
        ("actual", sent.filter(actual_cost__isnull=False), "actual_cost", "actual_cost_currency"),
        (
            "estimated",
            sent.filter(actual_cost__isnull=True, estimated_cost__isnull=False),
            "estimated_cost",
            "cost_currency",
        ),
    ):
        grouped = (
            rows.annotate(day=TruncDate("sent_at", tzinfo=tz))
            .values_list("day", "channel", currency)
            .annotate(total=Sum(amount))
            .values_list("day", "channel", currency, "total")
            .order_by()
        )
        for day, channel, code, total in grouped:
            sums[(day, channel, code or "?", kind)] += Decimal(total or 0)
    unpriced = (
        sent.filter(actual_cost__isnull=True, estimated_cost__isnull=True).order_by().aggregate(n=Count("id"))["n"]
    )
    return SpendSummary(days=days, currencies=_by_currency(sums, days, today, month_start), unpriced=unpriced)


def _by_currency(
    sums: dict[tuple[date, str, str, str], Decimal], days: list[date], today: date, month_start: date
) -> dict[str, CurrencySpend]:
    currencies: dict[str, CurrencySpend] = {}
    index = {day: position for position, day in enumerate(days)}
    channel_order = [value for value, _ in Channel.choices]
    for (day, channel, currency, kind), amount in sorted(
        sums.items(),
        key=lambda item: (item[0][2], channel_order.index(item[0][1]) if item[0][1] in channel_order else 99),
    ):
        spend = currencies.setdefault(currency, CurrencySpend())
        if day in index:
            spend.daily.setdefault(channel, [ZERO] * len(days))[index[day]] += amount
        for period, start in ((spend.today, today), (spend.month, month_start)):
            if day >= start:
                entry = period.setdefault(channel, Spend())
                setattr(entry, kind, getattr(entry, kind) + amount)
    return currencies
