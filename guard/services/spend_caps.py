"""Spend caps: what has been spent in each cap's window, and which of a wave's costs still fit (docs/guard.md).

Spend is counted per cap and window in Redis, in millionths of the currency (estimates have 6 decimals, so the sum
is exact). `spend_admit` runs one Lua script for a whole wave: per item, in order, it adds the item's cost to each
of its caps only if every one of them stays within its amount, so two workers cannot both pass the last cent. A
counter that is missing (a new window, or Redis lost its data) is first recounted from the database by the function
deliveries registers (`register_spend_recount`): the guard knows caps, not messages.

The cap list is kept in each process like the price list (SPEND_CAP_CACHE_SECONDS), forgotten when a cap is saved
here, so a worker with no caps configured asks nothing of anyone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from redis import Redis

from content.models import Channel
from guard.models import SpendCap
from guard.services.pricing import price_list

MICRO = 10**6  # counters hold millionths: estimated_cost has 6 decimal places
KEY_PREFIX = "tidings:guard:spend"
# Kept this long past its window's end, so a message sent just after midnight still finds yesterday's counter if a
# clock is a little behind; the next window has its own key.
COUNTER_GRACE = timedelta(days=1)
TOTAL = "total"  # a period without windows (a campaign's whole life), for cap sources that need one


@dataclass(frozen=True)
class Cap:
    """One cap, from the SpendCap table or from another source (deliveries' registry of cap sources).

    `scope` and `scope_value` say which messages it covers, for the recount (deliveries maps them to columns)."""

    key: str  # unique among caps: "cap:12" for SpendCap 12
    label: str  # "the daily sms cap"
    period: str  # SpendCap.Period, or TOTAL
    amount: Decimal
    currency: str
    scope: str
    scope_value: str = ""
    defer: bool = False  # reached: defer to the next window instead of holding (not for TOTAL: there is none)

    @classmethod
    def of(cls, cap: SpendCap) -> Cap:
        return cls(
            key=f"cap:{cap.pk}",
            label=cap.label,
            period=cap.period,
            amount=cap.amount,
            currency=cap.currency,
            scope=cap.scope,
            scope_value=cap.scope_value,
            defer=cap.on_reach == SpendCap.OnReach.DEFER,
        )

    def covers(self, *, channel: str, api_key_id: int | None) -> bool:
        """Whether a message of this channel and key counts against this (SpendCap) cap."""
        if self.scope == SpendCap.Scope.CHANNEL:
            return channel == self.scope_value
        if self.scope == SpendCap.Scope.API_KEY:
            return api_key_id is not None and str(api_key_id) == self.scope_value
        return self.scope == SpendCap.Scope.ALL

    def describe(self, spent: Decimal, *, verb: str = "Held") -> str:
        """Why a message is held: 'Held: the daily sms cap of 10.00 USD is reached (9.96 USD spent today).'"""
        when = WHEN.get(self.period, "so far")
        return (
            f"{verb}: {self.label} of {money(self.amount)} {self.currency} is reached "
            f"({money(spent)} {self.currency} spent {when})."
        )


WHEN: dict[str, str] = {SpendCap.Period.DAY: "today", SpendCap.Period.MONTH: "this month"}


def money(amount: Decimal) -> str:
    """10.000000 -> '10.00', 0.007900 -> '0.0079': at least cents, no trailing zeros past them."""
    text = f"{amount.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    label: str  # part of the counter's key: 2026-12-07, 2026-12, total


def cap_window(period: str, now: datetime | None = None) -> Window:
    """The day or month containing `now`, in settings.TIME_ZONE (a cap's day starts at local midnight)."""
    local = timezone.localtime(now or timezone.now(), ZoneInfo(settings.TIME_ZONE))
    if period == TOTAL:
        return Window(datetime(2000, 1, 1, tzinfo=local.tzinfo), datetime(9999, 1, 1, tzinfo=local.tzinfo), TOTAL)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == SpendCap.Period.DAY:
        # Through the calendar, not +24 h: a day with a daylight-saving change is 23 or 25 hours long.
        following = (day + timedelta(days=1, hours=3)).replace(hour=0)
        return Window(day, following, f"{day:%Y-%m-%d}")
    month = day.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return Window(month, following, f"{month:%Y-%m}")


def channels_caps_cannot_count() -> list[str]:
    """The channels some cap covers that have no price at all: no message of theirs has an estimate, so the caps
    count none of them (an SMS to one country without a price is held instead: deliveries' `held:unpriced`)."""
    priced = price_list().channels
    covered: set[str] = set()
    for cap in spend_caps():
        covered |= {cap.scope_value} if cap.scope == SpendCap.Scope.CHANNEL else set(Channel.values)
    return [channel for channel in Channel.values if channel in covered and channel not in priced]


def counter_key(cap: Cap, window: Window) -> str:
    return f"{KEY_PREFIX}:{cap.key}:{window.label}"


# (when it was read on the monotonic clock, the caps): replaced whole, so threads never see half a list.
_cached: tuple[float, tuple[Cap, ...]] | None = None


def spend_caps() -> tuple[Cap, ...]:
    """Every SpendCap, from this process's copy while it is fresh (empty: no cap, nothing to check)."""
    global _cached
    cached = _cached
    if cached is None or time.monotonic() - cached[0] > settings.SPEND_CAP_CACHE_SECONDS:
        cached = _cached = (time.monotonic(), tuple(Cap.of(cap) for cap in SpendCap.objects.all()))
    return cached[1]


def forget_spend_caps() -> None:
    global _cached
    _cached = None


@receiver([post_save, post_delete], sender=SpendCap, dispatch_uid="guard.forget_spend_caps")
def _spend_cap_changed(**kwargs: object) -> None:
    forget_spend_caps()


# What a cap's window has cost so far, from the database: registered by deliveries (which knows messages).
Recount = Callable[[Cap, Window], Decimal]
_recount: list[Recount] = []
# Called with a cap whose amount was raised, after the save commits: deliveries re-admits what it held.
_after_raise: list[Callable[[Cap], object]] = []


def register_spend_recount(recount: Recount) -> None:
    _recount[:] = [recount]


def after_cap_raised(hook: Callable[[Cap], object]) -> Callable[[Cap], object]:
    if hook not in _after_raise:
        _after_raise.append(hook)
    return hook


def spend_cap_save(*, cap: SpendCap) -> None:
    """Save a cap (the admin's form); a higher amount than before re-admits what it held, after the commit."""
    previous = SpendCap.objects.filter(pk=cap.pk).values_list("amount", flat=True).first() if cap.pk else None
    cap.save()
    forget_spend_caps()
    if previous is not None and cap.amount > previous:
        raised = Cap.of(cap)
        # Robust: the cap is saved whatever happens next; a re-admission that fails (Redis down) is logged, and the
        # messages stay held for a person to release or for the next raise.
        for hook in _after_raise:
            transaction.on_commit(functools.partial(hook, raised), robust=True)


@dataclass(frozen=True)
class SpendItem:
    """One message's cost (millionths) and the caps it counts against. `checked=False`: counted without being
    checked (a person released it past its cap)."""

    cost: int
    caps: tuple[Cap, ...]
    checked: bool = True


@dataclass
class Admission:
    """What spend_admit decided: per item, the cap it would pass (None: admitted), and each cap's spend after."""

    blocked: list[Cap | None]
    spent: dict[str, Decimal] = field(default_factory=dict)  # by cap key


# KEYS: one counter per cap. ARGV[1]: "1" to only simulate; ARGV[2..1+#KEYS]: each cap's amount; then one item per
# argument, "cost,checked,i,j,...", i and j the 1-based positions of its caps in KEYS. Returns {1, missing
# positions...} when a counter is missing (nothing is written), else {0, blocking position per item (0: admitted)...,
# then each counter's value as a string}.
_ADMIT = """
local n = #KEYS
local current = {}
local missing = {}
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if value then current[i] = tonumber(value) else missing[#missing + 1] = i end
end
if #missing > 0 then
  table.insert(missing, 1, 1)
  return missing
end
local added = {}
for i = 1, n do added[i] = 0 end
local out = {0}
for j = 2 + n, #ARGV do
  local fields = {}
  for f in string.gmatch(ARGV[j], '[^,]+') do fields[#fields + 1] = tonumber(f) end
  local cost, checked, blocked = fields[1], fields[2], 0
  if checked == 1 then
    for k = 3, #fields do
      local i = fields[k]
      if current[i] + cost > tonumber(ARGV[1 + i]) then blocked = i break end
    end
  end
  if blocked == 0 then
    for k = 3, #fields do
      local i = fields[k]
      current[i] = current[i] + cost
      added[i] = added[i] + cost
    end
  end
  out[#out + 1] = blocked
end
for i = 1, n do
  if ARGV[1] == '0' and added[i] > 0 then redis.call('INCRBY', KEYS[i], string.format('%d', added[i])) end
  out[#out + 1] = string.format('%d', current[i])
end
return out
"""

# KEYS: counters; ARGV: the millionths to take off each. Never below zero (a recount may have missed some).
_REFUND = """
for i = 1, #KEYS do
  local value = tonumber(redis.call('GET', KEYS[i]) or '0')
  if value > 0 then
    local left = math.max(value - tonumber(ARGV[i]), 0)
    redis.call('SET', KEYS[i], string.format('%d', left), 'KEEPTTL')
  end
end
return 0
"""


def _redis() -> Redis:
    return django_rq.get_connection("default")


def spend_admit(items: Sequence[SpendItem], *, dry_run: bool = False, now: datetime | None = None) -> Admission:
    """Which items fit their caps, in order, adding the admitted ones' costs (unless `dry_run`): one round trip to
    Redis, two more and a recount per missing counter."""
    caps = list({cap.key: cap for item in items for cap in item.caps}.values())
    if not caps:
        return Admission(blocked=[None] * len(items))
    now = now or timezone.now()
    windows = [cap_window(cap.period, now) for cap in caps]
    keys = [counter_key(cap, window) for cap, window in zip(caps, windows, strict=True)]
    position = {cap.key: i + 1 for i, cap in enumerate(caps)}
    args = ["1" if dry_run else "0", *(str(int(cap.amount * MICRO)) for cap in caps)]
    args += [
        ",".join([str(item.cost), "1" if item.checked else "0", *(str(position[c.key]) for c in item.caps)])
        for item in items
    ]
    script = _redis().register_script(_ADMIT)
    for _ in range(3):
        answer = script(keys=keys, args=args)
        if answer[0] == 0:
            break
        for i in answer[1:]:
            _counter_recount(caps[i - 1], windows[i - 1], keys[i - 1], now)
    else:
        raise RuntimeError("spend counters keep disappearing from Redis")
    blocked = [caps[i - 1] if i else None for i in answer[1 : 1 + len(items)]]
    values = answer[1 + len(items) :]
    return Admission(
        blocked=blocked,
        spent={cap.key: Decimal(int(value)) / MICRO for cap, value in zip(caps, values, strict=True)},
    )


def spend_refund(items: Sequence[SpendItem], *, now: datetime | None = None) -> None:
    """Take back what admitted items added (they were deferred, not sent): their caps' current windows."""
    totals: dict[str, int] = {}
    for item in items:
        for cap in item.caps:
            key = counter_key(cap, cap_window(cap.period, now))
            totals[key] = totals.get(key, 0) + item.cost
    if totals:
        _redis().register_script(_REFUND)(keys=list(totals), args=[str(cost) for cost in totals.values()])


def cap_spent(cap: Cap, *, now: datetime | None = None) -> Decimal:
    """What the cap's current window has cost so far (recounted first if Redis has no counter)."""
    window = cap_window(cap.period, now)
    key = counter_key(cap, window)
    value = _redis().get(key)
    if value is None:
        _counter_recount(cap, window, key, now or timezone.now())
        value = _redis().get(key)
    return Decimal(int(value or 0)) / MICRO


def _counter_recount(cap: Cap, window: Window, key: str, now: datetime) -> None:
    """Set a missing counter from the database, unless another process set it first (SET NX)."""
    spent = _recount[0](cap, window) if _recount else Decimal(0)
    expires = max(int((window.end - now + COUNTER_GRACE).total_seconds()), 60)
    _redis().set(key, str(int(spent * MICRO)), nx=True, ex=min(expires, 400 * 86400))
