"""The provider gate: whether a provider may take a call now, asked before each wave of claims.

Two things stand between a message and its call: the provider's circuit breaker (asked once per wave; while it is
open, one call at a time probes the provider) and its send rate (one slot per message, when a rate is set). A
message they hold back is deferred (queued -> scheduled, outcomes.record_deferred) to the moment it may go,
spending no attempt, so the worker neither waits nor spins; the dispatcher releases it again then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, cast

from redis.exceptions import RedisError

from ..circuit_breakers import ProviderBreaker
from ..rate_limits import SendRateLimiter, Wait

logger = logging.getLogger(__name__)

# When Redis cannot say whether the rate allows a call, look again this many seconds later.
RATE_UNKNOWN_WAIT_SECONDS = 1.0


@dataclass
class Deferral:
    """Messages a pause or a rate limit holds back, and when to try each again."""

    code: str
    reason: str
    until: float
    slots: int = 0  # with a rate limit: how many fit in each window, to spread a long line over the next windows
    window: float = 0.0
    message_ids: list[int] = field(default_factory=list)

    def send_at_for(self, position: int) -> datetime:
        offset = (position // self.slots) * self.window if self.slots else 0.0
        return datetime.fromtimestamp(self.until + offset, tz=UTC)


class Admission(NamedTuple):
    """A wave through the gate: the ids whose calls may start now, those given back to wait for the breaker's
    probe, and whether the one admitted call is that probe."""

    message_ids: list[int]
    given_back: list[tuple[int, str]]
    probe: bool


class ProviderGate:
    """The circuit breaker and the send rate of one provider, for one channel sender, and what they hold back.

    Once the whole provider is paused or at its rate, every later message of the job is held with the first;
    a sender at its own rate holds that sender's messages only. What it held is deferred once the channel sender
    is done (`deferrals()`).
    """

    def __init__(self, channel: str, provider: str):
        self.provider = provider
        self.breaker = ProviderBreaker(provider)
        self.limiter = SendRateLimiter(channel, provider)
        self.held_all: Deferral | None = None
        self.held_by_sender: dict[str, Deferral] = {}

    @property
    def holding_all(self) -> bool:
        """Whether the provider is paused or at its rate for everything this sender has left."""
        return self.held_all is not None

    def hold(self, pk: int, sender: str) -> bool:
        """Put the message with a deferral already holding it back (its sender's, or everyone's), if any."""
        held = self.held_all or self.held_by_sender.get(sender)
        if held is None:
            return False
        held.message_ids.append(pk)
        return True

    def admit(self, wave: Sequence[tuple[int, str]]) -> Admission:
        """Which of a wave's (id, sender) may start their calls now: the breaker is asked once for the wave, the
        send rate once per message. Those refused are held; while the breaker lets one call probe the provider,
        the rest of the wave is given back to wait for its answer."""
        allowed, until, probe = self.breaker.admit()
        if not allowed:
            reason = f"{self.provider} is paused by its circuit breaker after repeated failures."
            # admit() gives the time to look again whenever it refuses.
            self.held_all = Deferral("circuit_open", reason, cast(float, until), message_ids=[pk for pk, _ in wave])
            return Admission([], [], False)
        given_back = list(wave[1:]) if probe else []
        admitted = []
        for pk, sender in wave[:1] if probe else wave:
            if self.hold(pk, sender):
                continue
            deferral = self._admit_rate(sender)
            if deferral is None:
                admitted.append(pk)
                continue
            deferral.message_ids.append(pk)
            if deferral.code == "sender_rate_limited":
                self.held_by_sender[sender] = deferral
            else:
                self.held_all = deferral
        return Admission(admitted, given_back, probe)

    def calls_answered(self, errors: Sequence[BaseException | None], *, probe_answered: bool) -> None:
        """Tell the breaker how the calls that came back went (None: accepted), and free its probe if answered."""
        self.breaker.record(errors)
        if probe_answered:
            self.breaker.release_probe()

    def probe_unused(self) -> None:
        """The probe's message could not be claimed (cancelled, or another worker's): nobody tests the provider."""
        self.breaker.release_probe()

    def deferrals(self) -> list[Deferral]:
        """What the gate held back, for outcomes.record_deferred once the sender is done."""
        return [deferral for deferral in [self.held_all, *self.held_by_sender.values()] if deferral is not None]

    def _admit_rate(self, sender: str) -> Deferral | None:
        """Take a slot of the send rate for one call (None), or say until when the sender must wait (a Deferral;
        its code says whether the limit is the sender's own or the whole provider's)."""
        if not self.limiter.enabled:
            return None
        try:
            if self.limiter.acquire(sender):
                return None
            limit_wait = self.limiter.wait(sender)
        except RedisError as error:
            logger.warning("Rate limiter unavailable for %s: %s", self.provider, error)
            reason = "The rate limiter could not be reached."
            return Deferral("rate_unknown", reason, time.time() + RATE_UNKNOWN_WAIT_SECONDS)
        return self._rate_deferral(sender, limit_wait)

    def _rate_deferral(self, sender: str, limit_wait: Wait | None) -> Deferral:
        if limit_wait is None:  # a slot came back between the refusal and the question: try again at once
            return Deferral("rate_limited", f"Send rate of {self.provider} reached.", time.time())
        if limit_wait.per_sender:
            reason = f"Send rate {limit_wait.limit} of {self.provider} for {sender or 'the default sender'} reached."
            code = "sender_rate_limited"
        else:
            reason = f"Send rate {limit_wait.limit} of {self.provider} reached."
            code = "rate_limited"
        return Deferral(code, reason, limit_wait.until, limit_wait.slots, limit_wait.window)
