"""How many webhook requests we refused for a missing or wrong signature, per minute, counted in Redis.

A burst of refusals means someone is forging callbacks, or a provider's secret was rotated on one side only: the
alerts read the sum over the last minutes. A counter per minute (INCR, expiring after KEEP_MINUTES) costs one round
trip per refusal and nothing on requests that pass. Losing counts with Redis is harmless: it is an alarm, not a
record, and the warning each refusal logs stays.
"""

from __future__ import annotations

import logging
import time

import django_rq
from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "tidings:webhooks:signature-failures:"  # + the minute (Unix time // 60)
KEEP_MINUTES = 15


# One client (and its connection pool) per queue configuration: django_rq.get_connection() makes a new client,
# and so a new connection, at each call, which a flood of forged requests would multiply.
_clients: dict[str, Redis] = {}


def _redis() -> Redis:
    config = repr(settings.RQ_QUEUES["default"])
    if config not in _clients:
        _clients[config] = django_rq.get_connection("default")
    return _clients[config]


def _minute(now: float) -> int:
    return int(now // 60)


def signature_failure_record(*, now: float | None = None) -> None:
    """Count one refused request. Never raises: the refusal (403) matters more than the count."""
    key = f"{KEY_PREFIX}{_minute(time.time() if now is None else now)}"
    try:
        pipeline = _redis().pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, KEEP_MINUTES * 60)
        pipeline.execute()
    except (RedisError, OSError) as error:
        logger.warning("Could not count a webhook signature failure in Redis: %s", error)


def signature_failures_since(*, minutes: int, now: float | None = None) -> int:
    """Refusals in the last `minutes` whole minutes, the current one included (Redis errors propagate)."""
    minutes = max(1, min(minutes, KEEP_MINUTES))
    current = _minute(time.time() if now is None else now)
    keys = [f"{KEY_PREFIX}{minute}" for minute in range(current - minutes + 1, current + 1)]
    return sum(int(count) for count in _redis().mget(keys) if count is not None)
