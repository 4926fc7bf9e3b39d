"""One channel's messages through its provider: the send path's loop.

Each turn of `ChannelSender.run`'s loop, while messages wait or calls are in flight:

1. Stop claiming on SIGTERM; once every message so far has started its call, take more from the feed (the jobs
   waiting behind this one, deliveries.job_source), or wait for a held job due in a moment.
2. When enough call slots are free, start a wave: the provider gate admits it (breaker once, rate per message),
   its messages are claimed (queued -> sending) together with the outcomes written so far, and their calls start.
3. Write the accepted outcomes no claim took along, before waiting for answers.
4. Take the calls that came back: failures written at once, accepted ones kept for the next claim's round trip.

A slot is free again once its outcome is written, not when its answer arrives: until then the message is still
`sending`, in doubt if this process dies, and at most SEND_CONCURRENCY messages may be (docs/reliability.md).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter, deque
from typing import Protocol

from django.conf import settings

from ..backends.base import BaseBackend, SendResult
from ..instruments import observe_deferred
from ..models import Message, Status
from ..services.recovery import fail_expired_messages
from ..services.spend_caps import spend_refund_deferred
from .call_pool import CallPool
from .claims import to_outgoing
from .database_loss import written_despite_database_loss
from .gate import ProviderGate
from .outcomes import OutcomeRecorder, record_deferred
from .shutdown import stop_requested

logger = logging.getLogger(__name__)

# (message id, sender): what a channel sender needs of a message before its claim loads the rest.
PendingRow = tuple[int, str]


class Feed(Protocol):
    """More messages of the channel being sent, taken over from the send jobs waiting behind this one (job.py)."""

    def due(self) -> bool:
        """Whether to ask now (False while waiting for a held job's time)."""
        ...

    def seconds_to_wait(self) -> float:
        """How long until it is time to ask again (0 if it is)."""
        ...

    def take(self) -> list[PendingRow]:
        """The next messages of this channel; none now, or (`finished`) none ever again."""
        ...

    @property
    def finished(self) -> bool:
        """Whether nothing more will come."""
        ...


class ChannelSender:
    """Sends one channel's share of a job through its backend; counts outcomes by status in `counts`."""

    def __init__(
        self,
        channel: str,
        backend: BaseBackend,
        *,
        counts: Counter[str],
        waiting_parents: set[int],
        feed: Feed | None = None,
    ):
        self.backend = backend
        self.gate = ProviderGate(channel, backend.provider_name)
        self.outcomes = OutcomeRecorder(backend.provider_name, counts, waiting_parents)
        self.counts = counts
        # More of this channel's messages once these have all started (taken over from waiting jobs); None when
        # nothing more is to be taken.
        self.feed = feed
        self.concurrency = max(settings.SEND_CONCURRENCY, 1)
        # Claim when at least this many call slots are free: a wave's claim is one UPDATE, whatever its size, but
        # slots left waiting for a wave send nothing. Since a slot frees only once its outcome is written, the
        # smallest waves did best (2,800/s at 2 of 100 slots, 2,700 at 10, 2,600 at 25: performance-log.md, item 27).
        self.wave_size = max(self.concurrency // 50, 1)
        self.pending: deque[PendingRow] = deque()  # not claimed yet
        # Calls started, by message id (a job names a message once), each marked if it is the breaker's probe.
        self.in_flight: dict[int, tuple[Message, bool]] = {}

    def run(self, rows: list[PendingRow], *, not_before: float | None = None) -> None:
        """Send these messages, and what the feed gives, recording every outcome; nothing starts before
        `not_before` (epoch seconds)."""
        self.pending.extend(rows)
        try:
            pool_size = self.concurrency if self.feed is not None else min(self.concurrency, len(rows)) or 1
            with CallPool(self.backend, pool_size) as pool:
                self._wait_until(not_before, rows)
                try:
                    while True:
                        self._stop_if_asked()
                        if not self.pending:
                            self._take_more()
                        if not (self.pending or self.in_flight):
                            if self.feed is None:
                                break
                            self._wait_for_feed()
                            continue
                        self._start_wave_if_slots_free(pool)
                        self.outcomes.write()  # what no claim took along: written before waiting for answers
                        self._take_answers(pool, timeout=self._answer_wait())
                finally:
                    # Every call that started gets its outcome recorded, whatever stopped the loop.
                    while self.in_flight:
                        self._take_answers(pool)
                    self.outcomes.write()
        finally:
            written_despite_database_loss(self.outcomes.apply_early_receipts, what="applying early receipts")
            for deferral in self.gate.deferrals():
                deferring = functools.partial(record_deferred, deferral)
                self.counts[Status.SCHEDULED] += written_despite_database_loss(deferring, what="deferring messages")
                spend_refund_deferred(deferral.message_ids)  # not sent: counted again when it comes back
            observe_deferred(self.gate.provider, self.gate.deferrals())

    def _wait_until(self, not_before: float | None, rows: list[PendingRow]) -> None:
        """A job held for its time waits here, after reading its rows and opening its call pool, so that its first
        calls start on time; what expired meanwhile fails as expired (the claim takes only rows still queued)."""
        early = not_before - time.time() if not_before is not None else 0.0
        if early > 0:
            time.sleep(early)
            self.counts[Status.FAILED] += fail_expired_messages(message_ids=[pk for pk, _ in rows])

    def _stop_if_asked(self) -> None:
        if self.pending and stop_requested():
            logger.warning("Stopping on SIGTERM; unsent messages stay queued for the next worker")
            self.pending.clear()

    def _take_more(self) -> None:
        """All the messages so far have started their calls: take the next ones now, while the last calls are in
        flight, so that the call slots never drain between jobs. Receipts for those sent are applied first."""
        if self.feed is None or not self.feed.due():
            return
        self.outcomes.write()
        if stop_requested() or self.gate.holding_all:
            # Stopping; or the provider is paused or at its rate: whatever it took would only be deferred, and
            # held in this process until it ends. The dispatcher releases them when they can go.
            self.feed = None
            return
        self.outcomes.apply_early_receipts()
        more = self.feed.take()
        self.pending.extend(more)
        if not more and self.feed.finished:
            self.feed = None

    def _wait_for_feed(self) -> None:
        """Nothing left to send or hear from: wait for the held job the feed says is due in a moment."""
        assert self.feed is not None
        self.outcomes.write()
        time.sleep(self.feed.seconds_to_wait())

    def _answer_wait(self) -> float | None:
        # Waiting for a held job to come due: no waiting for answers past that.
        return self.feed.seconds_to_wait() if self.feed is not None and not self.pending else None

    def _start_wave_if_slots_free(self, pool: CallPool) -> None:
        """Start a wave when enough call slots are free (or none is busy): a wave's claim is one UPDATE."""
        free = self.concurrency - len(self.in_flight)
        if self.pending and free > 0 and (not self.in_flight or free >= min(self.wave_size, len(self.pending))):
            self._start_wave(pool, free)

    def _start_wave(self, pool: CallPool, free: int) -> None:
        """Admit, claim and start the calls of up to `free` pending messages."""
        wave: list[PendingRow] = []
        while self.pending and len(wave) < free:
            pk, sender = self.pending.popleft()
            if not self.gate.hold(pk, sender):
                wave.append((pk, sender))
        if not wave:
            return
        admission = self.gate.admit(wave)
        # One call tests a paused provider; the rest wait for its answer (the next wave sees them pending).
        self.pending.extendleft(reversed(admission.given_back))
        claimed = self.outcomes.write(claim_ids=admission.message_ids)
        if admission.probe and not claimed:
            self.gate.probe_unused()
        for message in claimed:
            self.in_flight[message.pk] = (message, admission.probe)
        pool.start([(message.pk, to_outgoing(message)) for message in claimed])

    def _take_answers(self, pool: CallPool, timeout: float | None = None) -> None:
        """Wait for a call to come back (at most `timeout` seconds), then take every call that has. No waiting
        for more: the writes of the previous group take long enough for the next one to gather."""
        if not self.in_flight:
            return
        answers: list[tuple[Message, bool, SendResult]] = [
            (*self.in_flight.pop(key), result) for key, result in pool.results(timeout)
        ]
        if not answers:
            return
        self.gate.calls_answered(
            [result.error for _, _, result in answers], probe_answered=any(probe for _, probe, _ in answers)
        )
        self.outcomes.take([(message, result) for message, _, result in answers])
