"""The `guard` benchmark scenario (`benchmarks/run.py --only guard`): what the cost guard costs a message, its
controls idle (no price list, caps, allowlists, limits or quiet hours: the default) against every one of them on
and passing everything, alternating rounds in one run so that the machine's noise falls on both alike.

Two figures each: the time to store a message (creation runs the allowlist, the estimate, the velocity counters
and the quiet hours) and the rate at which two workers send (the worker runs the spend caps, one Redis call a wave).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import mean

ROUNDS = 2


@contextmanager
def guard_on():
    """Every control of the guard on, set so that none stops a message of the benchmark's: a price for US SMS, an
    allowlist naming the US, velocity limits per recipient and per prefix far above the run, a spend cap far above
    its cost, quiet hours in a minute of the day twelve hours away."""
    from django.test import override_settings
    from django.utils import timezone

    from guard.models import Price

    quiet_start = (timezone.now() + timedelta(hours=12)).astimezone(timezone.get_current_timezone())
    quiet = f"{quiet_start:%H:%M}-{quiet_start + timedelta(minutes=1):%H:%M}"
    Price.objects.create(channel="sms", country="US", price=Decimal("0.0079"), currency="USD")
    caps = _spend_caps_create()
    try:
        with override_settings(
            SMS_ALLOWED_COUNTRIES=["US"],
            RECIPIENT_HOURLY_LIMIT=1_000,
            PREFIX_DISTINCT_PER_HOUR=10_000_000,
            QUIET_HOURS=quiet,
            QUIET_HOURS_TRANSACTIONAL=quiet,
        ):
            yield
    finally:
        Price.objects.all().delete()
        for cap in caps:
            cap.delete()


def _spend_caps_create() -> list:
    """A daily cap on every SMS and a monthly one on all spend, each far above what the run costs."""
    from guard.models import SpendCap

    return [
        SpendCap.objects.create(
            scope="channel", scope_value="sms", period="day", amount=Decimal("1000000"), currency="USD"
        ),
        SpendCap.objects.create(scope="all", scope_value="", period="month", amount=Decimal("1000000"), currency="USD"),
    ]


def _round(bench, count: int) -> dict:
    """One round: `count` SMS stored (timed), then sent by two workers (their rate at the fake)."""
    from benchmarks.run import rate_from_receipts

    bench.reset()
    started = time.perf_counter()
    bench.create_messages(count)
    store_s = time.perf_counter() - started
    bench.send_with_workers(count, timeout=max(120, count / 50))
    from deliveries.models import Message, Status

    held = Message.objects.filter(status=Status.HELD).count()
    return {
        "store_us_per_message": round(store_s * 1e6 / count, 1),
        "rate_per_s": round(rate_from_receipts(bench.received()), 1),
        "held": held,
        "at": datetime.now().isoformat(timespec="seconds"),
    }


def scenario_guard(bench, count: int) -> dict:
    """Rounds off / on / off / on of `count` SMS each: the means, and the guard's price as a share of them."""
    rounds: dict[str, list[dict]] = {"off": [], "on": []}
    for _ in range(ROUNDS):
        rounds["off"].append(_round(bench, count))
        with guard_on():
            rounds["on"].append(_round(bench, count))
    off_rate, on_rate = (mean(r["rate_per_s"] for r in rounds[side]) for side in ("off", "on"))
    off_store, on_store = (mean(r["store_us_per_message"] for r in rounds[side]) for side in ("off", "on"))
    return {
        "messages_per_round": count,
        "rounds": rounds,
        "rate_per_s_off": round(off_rate, 1),
        "rate_per_s_on": round(on_rate, 1),
        "rate_change_pct": round((on_rate - off_rate) * 100 / off_rate, 1) if off_rate else None,
        "store_us_per_message_off": round(off_store, 1),
        "store_us_per_message_on": round(on_store, 1),
        "guard_store_us_per_message": round(on_store - off_store, 1),
    }
