"""One circuit breaker per provider, shared by every worker through Redis (pybreaker with CircuitRedisStorage).

After BREAKER_FAIL_MAX consecutive transient failures (any worker's) the breaker opens and the provider is paused
for BREAKER_RESET_TIMEOUT seconds: workers defer its messages to the moment it may be tried again instead of
spending their attempts on it. Then exactly one worker sends one message as a probe (a Redis key decides who):
success closes the breaker for everyone, failure opens it for another period.

Permanent errors (an invalid number) prove the provider is up, so they count as successes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pybreaker
import redis
from django.conf import settings
from redis.exceptions import RedisError

from messaging_project.redis_connections import RedisConfig, shared_client

from .exceptions import PermanentDeliveryError

logger = logging.getLogger(__name__)

NAMESPACE = "tidings:breaker"
# While a probe is in flight, other messages for the provider look again this many seconds later.
PROBE_WAIT_SECONDS = 1.0
# A closed breaker with no failures counted, as read from Redis, is believed this long by the same sender: a busy
# worker starts a wave of calls many times a second, and one read per wave was a tenth of its time. Any failure
# it records (and any other state) makes the next wave read again; another worker's trip is seen this much later.
QUIET_STATUS_MAX_AGE = 0.1


def _replay(error: BaseException | None) -> None:
    """Stands in for a call that already happened, so pybreaker can count its outcome."""
    if error is not None:
        raise error


@dataclass(frozen=True)
class BreakerStatus:
    provider: str
    state: str  # closed, open, half-open, or unknown when Redis does not answer
    failures: int
    opened_at: float | None
    retry_at: float | None

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "failures": self.failures,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
        }


_local = threading.local()


def _redis() -> redis.Redis:
    # The process's shared client (plain, TLS or Sentinel as configured); it does not decode responses, as
    # pybreaker decodes bytes itself.
    return shared_client(RedisConfig.from_settings(settings))


class ProviderBreaker:
    """The breaker of one provider. Cheap to create; the state lives in Redis."""

    def __init__(self, provider: str):
        self.provider = provider
        self.namespace = f"{NAMESPACE}:{provider}"
        self.reset_timeout = settings.BREAKER_RESET_TIMEOUT
        self._last_status: BreakerStatus | None = None  # what the last admit() read
        self._read_at = 0.0  # when, on the monotonic clock

    def _breaker(self) -> pybreaker.CircuitBreaker:
        # pybreaker holds a lock for the whole call, so each thread gets its own instance over the shared storage.
        cache = getattr(_local, "breakers", None)
        if cache is None:
            cache = _local.breakers = {}
        redis_config = RedisConfig.from_settings(settings)
        key = (self.provider, redis_config, settings.BREAKER_FAIL_MAX, settings.BREAKER_RESET_TIMEOUT)
        if key not in cache:
            storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, _redis(), namespace=self.namespace)
            cache[key] = pybreaker.CircuitBreaker(
                fail_max=settings.BREAKER_FAIL_MAX,
                reset_timeout=settings.BREAKER_RESET_TIMEOUT,
                exclude=[PermanentDeliveryError],
                state_storage=storage,
                name=self.provider,
                # The call that trips the breaker keeps its own error, so the message records what happened.
                throw_new_error_on_trip=False,
            )
        return cache[key]

    def status(self) -> BreakerStatus:
        """The shared state, read straight from Redis."""
        try:
            state, failures, opened_at = _redis().mget(
                [f"{self.namespace}:pybreaker:{name}" for name in ("state", "fail_counter", "opened_at")]
            )
        except RedisError:
            return BreakerStatus(self.provider, "unknown", 0, None, None)
        state_name = state.decode() if isinstance(state, bytes) else (state or pybreaker.STATE_CLOSED)
        opened = float(opened_at) if opened_at else None
        retry_at = opened + self.reset_timeout if opened is not None and state_name != pybreaker.STATE_CLOSED else None
        return BreakerStatus(self.provider, state_name, int(failures or 0), opened, retry_at)

    def admit(self) -> tuple[bool, float | None, bool]:
        """May a message be sent now? Returns (allowed, when to look again if not, whether it is the probe).

        Closed: yes. Open and paused: no, until the pause ends. Pause over (or half-open): yes for the one caller
        that takes the probe, which must then `call(..., probe=True)`; the others look again a moment later.
        """
        status: BreakerStatus | None = self._last_status
        quiet = status is not None and status.state == pybreaker.STATE_CLOSED and status.failures == 0
        if status is None or not quiet or time.monotonic() - self._read_at > QUIET_STATUS_MAX_AGE:
            status = self._last_status = self.status()
            self._read_at = time.monotonic()
        if status.state in (pybreaker.STATE_CLOSED, "unknown"):
            return True, None, False
        now = time.time()
        if status.state == pybreaker.STATE_OPEN and status.retry_at is not None and now < status.retry_at:
            return False, status.retry_at, False
        if self._take_probe():
            return True, None, True
        return False, now + PROBE_WAIT_SECONDS, False

    def _take_probe(self) -> bool:
        try:
            lease = max(int(settings.SEND_LEASE_SECONDS), 1)
            return bool(_redis().set(f"{self.namespace}:probe", "1", nx=True, ex=lease))
        except RedisError:
            return True

    def release_probe(self) -> None:
        try:
            _redis().delete(f"{self.namespace}:probe")
        except RedisError:
            logger.warning("Could not release the %s breaker probe; it expires by itself", self.provider)

    def record(self, errors: Sequence[BaseException | None]) -> None:
        """Tell the breaker how calls went (None: success), in the order they finished.

        The calls ran outside pybreaker, admitted a wave at a time by `admit()`, so that hundreds can be in flight
        without a Redis round trip each. Their outcomes go through pybreaker here, which counts consecutive
        failures, trips, and closes after a good probe, exactly as if it had wrapped each call. In the common case
        (the breaker was closed with no failures counted at the last `admit()` and every call succeeded) there is
        nothing to change and nothing is written.
        """
        last = self._last_status
        quiet = last is not None and last.state == pybreaker.STATE_CLOSED and last.failures == 0
        if quiet and not any(self._counts_as_failure(error) for error in errors):
            return
        try:
            breaker = self._breaker()
            for error in errors:
                try:
                    breaker.call(_replay, error)
                except pybreaker.CircuitBreakerError:
                    pass  # another worker opened it meanwhile; this call had already been made
                except Exception as replayed:  # noqa: BLE001 - the call's own error, replayed: already recorded
                    if replayed is not error:
                        raise
        except RedisError as error:
            logger.warning("Could not record outcomes on the %s breaker: %s", self.provider, error)
        self._last_status = None

    @staticmethod
    def _counts_as_failure(error: BaseException | None) -> bool:
        return error is not None and not isinstance(error, PermanentDeliveryError)

    def reset(self) -> None:
        """Close the breaker and forget its failures (an operator's action, and tests)."""
        try:
            keys = list(_redis().scan_iter(f"{self.namespace}:*"))
            if keys:
                _redis().delete(*keys)
        except RedisError:
            logger.warning("Could not reset the %s breaker", self.provider)
