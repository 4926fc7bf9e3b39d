"""What a send job runs: `send_messages()`, its messages still sendable, channel by channel.

For each message, in order (docs/reliability.md says why; docs/performance.md says how it stays cheap):

1. Past its deadline (`expires_at`)? It fails with that reason instead of going out late.
2. Its recipient suppressed (an opt-out that came after queueing)? It ends `suppressed`, never handed over.
   Its estimate past a spend cap (docs/guard.md)? It is `held`, never handed over either.
3. Its channel's sender (channel_sender.py) passes it through the provider gate, claims it just before its call
   and records the outcome: `sent`, a retry, `failed`, or deferred to `scheduled` while the provider is paused or
   at its rate.

A job may take over the send jobs waiting behind it (deliveries.job_source): their messages join the channel being
sent through a `ChannelFeed`. Another channel's messages taken that way are sent after it, and then no more are
taken.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from decimal import Decimal
from typing import NamedTuple

from messaging_project.log_context import log_context

from ..backends import get_backend
from ..db.lookups import among, pk_among
from ..exceptions import DeliveryError
from ..job_source import JobSource
from ..models import Message, Status
from ..services.recovery import fail_expired_messages
from ..services.spend_caps import COST_FIELDS, messages_hold_over_caps, spend_caps_active
from ..services.suppression import suppressions_blocking
from .channel_sender import ChannelSender, PendingRow
from .claims import claim_messages
from .outcomes import record_failure, record_suppressed
from .shutdown import stop_on_sigterm, stop_requested

logger = logging.getLogger(__name__)


def send_messages(
    message_ids: list[int], *, source: JobSource | None = None, not_before: float | None = None
) -> dict[str, int]:
    """Send the given messages (those still queued) and record every outcome. Returns counts by status.

    With `not_before` (epoch seconds), no call starts before then. Everything up to the first claim is done
    first (reading the rows, the database connection of a new work horse, the backend and its call pool: 50 ms
    on the benchmark machine), so that the first calls start when it comes and not 50 ms later; messages that
    expire during the wait still fail as expired.

    With a `source`, the last channel sent takes over more messages from it once every message so far has
    started its call, and again each time, as long as what it gets is all of its own channel.
    """
    job = JobMessages(source)
    job.add(message_ids)
    with stop_on_sigterm():
        while (next_channel := job.next_channel()) is not None and not stop_requested():
            channel, rows = next_channel
            try:
                backend = get_backend(channel)
            except Exception as error:  # misconfiguration: fail loudly on each message, with the reason
                logger.exception("No usable backend for %s", channel)
                job.fail_unconfigured(channel, rows, error)
                continue
            sender = ChannelSender(
                channel, backend, counts=job.counts, waiting_parents=job.waiting_parents, feed=job.feed_for(channel)
            )
            before = job.counts.copy()
            with log_context(channel=channel, provider=backend.provider_name):
                sender.run(rows, not_before=not_before)
                logger.info("Sent through %s: %s", backend.provider_name, outcome_summary(job.counts - before))
            not_before = None  # the first channel waited
    job.counts.pop("", None)
    return {status: count for status, count in job.counts.items() if count}


def outcome_summary(counts: Counter[str]) -> str:
    """'3 sent, 1 failed': what became of a channel's messages, for its log line."""
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()) if status and count) or "none"


class QueuedRow(NamedTuple):
    """What deciding whether and how to send a queued message needs, before its claim loads the rest."""

    pk: int
    channel: str
    sender: str
    recipient: str
    category: str
    # Read only when spend caps exist (services.spend_caps.COST_FIELDS): a worker without caps reads nothing more.
    estimated_cost: Decimal | None = None
    cost_currency: str = ""
    api_key_id: int | None = None
    campaign_id: int | None = None
    spend_counted: bool = False
    guard_released: bool = False


QUEUED_FIELDS = QueuedRow._fields[:5]


class JobMessages:
    """A send job's messages not yet handed to a channel sender, by channel, and what became of the others."""

    def __init__(self, source: JobSource | None):
        self.counts: Counter[str] = Counter()
        # Which of these messages have others waiting for them, asked once per lot rather than after every send.
        self.waiting_parents: set[int] = set()
        self.by_channel: defaultdict[str, list[PendingRow]] = defaultdict(list)
        # The jobs this one may still take over; None once no more are to be taken.
        self.source = source

    def add(self, message_ids: list[int]) -> None:
        for channel, rows in self.sendable_by_channel(message_ids).items():
            self.by_channel[channel].extend(rows)

    def next_channel(self) -> tuple[str, list[PendingRow]] | None:
        if not self.by_channel:
            return None
        channel = next(iter(self.by_channel))
        return channel, self.by_channel.pop(channel)

    def feed_for(self, channel: str) -> ChannelFeed | None:
        # Only the last channel takes more: the others' messages would wait behind everything it took.
        if self.source is None or self.by_channel:
            return None
        return ChannelFeed(self, channel)

    def sendable_by_channel(self, message_ids: list[int]) -> defaultdict[str, list[PendingRow]]:
        """The messages still queued among these, as (id, sender) by channel, once the expired ones have failed
        and the suppressed ones are recorded (both counted). Notes those others wait for in `waiting_parents`."""
        self.counts[Status.FAILED] += fail_expired_messages(message_ids=message_ids)
        capped = spend_caps_active()
        # Tuples, not model instances: building a thousand instances took four times as long as the query.
        rows = [
            QueuedRow(*values)
            for values in Message.objects.filter(pk_among(message_ids, status=Status.QUEUED))
            .order_by("pk")
            .values_list(*(QUEUED_FIELDS + COST_FIELDS if capped else QUEUED_FIELDS))
        ]
        # One suppression lookup for the lot: opt-outs that arrived after queueing are still honoured.
        blocking = suppressions_blocking(rows)
        unblocked = [message for message in rows if message.pk not in blocking]
        # Then the spend caps, in one Redis round trip for the lot; what would pass a cap is held (or deferred).
        stopped = messages_hold_over_caps(unblocked) if capped else {}
        self.counts.update(stopped.values())
        by_channel: defaultdict[str, list[PendingRow]] = defaultdict(list)
        for message in rows:
            if message.pk in blocking:
                self.counts[record_suppressed(message, blocking[message.pk])] += 1
            elif message.pk not in stopped:
                by_channel[message.channel].append((message.pk, message.sender))
        self.waiting_parents.update(
            Message.objects.filter(among("depends_on_id", [m.pk for m in rows], status=Status.WAITING)).values_list(
                "depends_on_id", flat=True
            )
        )
        return by_channel

    def fail_unconfigured(self, channel: str, rows: list[PendingRow], error: Exception) -> None:
        """A channel whose backend cannot be loaded: each message fails with the reason."""
        failure = DeliveryError(f"The {channel} provider is not configured: {error}", code="configuration")
        for message in claim_messages([pk for pk, _ in rows]):
            self.counts[record_failure(message, failure, provider="")] += 1


class ChannelFeed:
    """More messages of the channel being sent, taken over from the job's source (a channel sender's `Feed`).

    Messages of another channel taken along are kept for after this channel, and end the taking."""

    def __init__(self, job: JobMessages, channel: str):
        self.job = job
        self.channel = channel
        self.ask_at = 0.0  # epoch seconds: a held job may come due in a moment

    @property
    def finished(self) -> bool:
        return self.job.source is None

    def due(self) -> bool:
        return time.time() >= self.ask_at

    def seconds_to_wait(self) -> float:
        return max(self.ask_at - time.time(), 0)

    def take(self) -> list[PendingRow]:
        while self.job.source is not None:
            batch = self.job.source.next_batch()
            if not batch.message_ids:
                if not batch.more_may_come:
                    self.job.source = None
                elif batch.ask_again_at is not None:
                    self.ask_at = batch.ask_again_at
                return []
            fresh = self.job.sendable_by_channel(batch.message_ids)
            for other, rows in fresh.items():
                if other != self.channel:
                    self.job.by_channel[other].extend(rows)
                    self.job.source = None  # finish this channel, then send the other's; take no more after that
            if fresh.get(self.channel):
                return fresh[self.channel]
        return []
