"""Per-key request rates (ApiKey.rate), counted in Redis so every web process shares one count.

The counting is the `limits` library's moving window, as for send rates (deliveries.rate_limits): one Lua script
per request checks and takes a slot, so concurrent requests cannot all take the last one (DRF's own
SimpleRateThrottle reads and then writes the cache, which lets them). A key without a rate costs nothing: no
Redis round trip. If Redis cannot be reached the request is let through and a warning logged: the API keeps
storing messages while Redis is down (docs/reliability.md), and a rate limit is not worth losing them for.
"""

from __future__ import annotations

import functools
import logging
import math
import time

from django.conf import settings
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from messaging_project.redis_connections import RedisConfig, shared_client

from ..models import ApiKey

logger = logging.getLogger(__name__)
KEY_PREFIX = "tidings:api-rate"


@functools.cache
def _limiter(config: RedisConfig) -> MovingWindowRateLimiter:
    # limits' documented `connection_pool` option: the process's shared pool, plain, TLS or Sentinel alike.
    pool = shared_client(config).connection_pool
    return MovingWindowRateLimiter(RedisStorage(config.client_url(), connection_pool=pool, key_prefix=KEY_PREFIX))


@functools.lru_cache(maxsize=256)
def _rate_limits(rate: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(rate))


class ApiKeyRateThrottle(BaseThrottle):
    """Refuses a key's request beyond its rate with 429 and Retry-After (DRF adds both from `wait()`)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey) or not api_key.rate:
            return True
        limiter = _limiter(RedisConfig.from_settings(settings))
        identity = str(api_key.pk)
        try:
            for item in _rate_limits(api_key.rate):
                if not limiter.hit(item, identity):
                    reset_at = limiter.get_window_stats(item, identity).reset_time
                    self._wait = max(1, math.ceil(reset_at - time.time()))
                    return False
        except (RedisError, StorageError) as error:
            logger.warning("API key %s: rate %s not checked, Redis unreachable: %s", api_key.name, api_key.rate, error)
        return True

    def wait(self) -> float | None:
        return self._wait
