"""Send rates per provider and per sender, enforced across every worker process and machine through Redis.

The counting is the `limits` library's moving window (a Redis list of recent hits updated by one Lua script), so
no two workers can both take the last slot. A worker takes a slot just before each provider call; when none is
left it asks when one returns and defers the message to that moment instead of waiting or failing it.

Limits come from settings as rate strings: SMS_RATE_LIMIT="30/second" (the whole provider account),
SMS_SENDER_RATE_LIMIT="1/second" (each sender number), and the same for EMAIL_. Several limits may be joined with
";" ("14/second;50000/day"). Timestamps are the workers' clocks: keep them in sync (NTP).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from messaging_project.redis_connections import RedisConfig, shared_client

KEY_PREFIX = "tidings:rate"


@dataclass(frozen=True)
class Wait:
    """No capacity now: try again at `until` (epoch seconds). `slots` calls fit in each `window` seconds, which
    lets a caller deferring many messages spread them over the windows to come instead of piling them on one."""

    until: float
    slots: int
    window: float
    limit: str
    per_sender: bool


@functools.cache
def _storage(config: RedisConfig) -> RedisStorage:
    # limits' documented `connection_pool` option: the shared client's pool, plain, TLS or Sentinel alike.
    pool = shared_client(config).connection_pool
    return RedisStorage(config.client_url(), connection_pool=pool, key_prefix=KEY_PREFIX)


def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(_storage(RedisConfig.from_settings(settings)))


def configured_limits(channel: str) -> tuple[list[RateLimitItem], list[RateLimitItem]]:
    """(limits on the whole provider, limits per sender) for a channel, from settings; empty lists: no limit."""
    prefix = channel.upper()
    provider = getattr(settings, f"{prefix}_RATE_LIMIT", "") or ""
    sender = getattr(settings, f"{prefix}_SENDER_RATE_LIMIT", "") or ""
    return (parse_many(provider) if provider else [], parse_many(sender) if sender else [])


class SendRateLimiter:
    """The send rate of one provider on one channel. `acquire()` takes a slot; `wait()` says when one returns."""

    def __init__(self, channel: str, provider: str):
        self.channel = channel
        self.provider = provider
        self.provider_limits, self.sender_limits = configured_limits(channel)

    @property
    def enabled(self) -> bool:
        return bool(self.provider_limits or self.sender_limits)

    def _checks(self, sender: str) -> list[tuple[RateLimitItem, tuple[str, ...], bool]]:
        checks: list[tuple[RateLimitItem, tuple[str, ...], bool]]
        checks = [(item, (self.provider,), False) for item in self.provider_limits]
        checks += [(item, (self.provider, "sender", sender or "default"), True) for item in self.sender_limits]
        return checks

    def acquire(self, sender: str = "") -> bool:
        """Take one slot under every limit that applies, or none if any is full.

        Limits are hit one after another, so when a later one is full the slots taken before it stay used: the
        provider then sees a little less than its limit, never more.
        """
        limiter = _limiter()
        return all(limiter.hit(item, *keys) for item, keys, _ in self._checks(sender))

    def wait(self, sender: str = "") -> Wait | None:
        """When capacity returns for this sender (the latest of the full limits), or None if there is some now."""
        limiter = _limiter()
        waits = []
        for item, keys, per_sender in self._checks(sender):
            stats = limiter.get_window_stats(item, *keys)
            if stats.remaining <= 0:
                waits.append(Wait(stats.reset_time, item.amount, item.get_expiry(), str(item), per_sender))
        return max(waits, key=lambda wait: wait.until) if waits else None

    def capacity(self) -> int | None:
        """How many more calls the provider-wide limits allow right now; None when there are none."""
        if not self.provider_limits:
            return None
        limiter = _limiter()
        return min(max(limiter.get_window_stats(item, self.provider).remaining, 0) for item in self.provider_limits)

    def describe(self) -> dict:
        """Each provider-wide limit and what is left of it now, for the health endpoint and the admin."""
        limiter = _limiter()
        rows = []
        for item in self.provider_limits:
            stats = limiter.get_window_stats(item, self.provider)
            rows.append({"limit": str(item), "remaining": max(stats.remaining, 0)})
        return {"limits": rows, "per_sender": [str(item) for item in self.sender_limits]}
