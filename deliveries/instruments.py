"""What the send path and the webhooks measure as they go, for Prometheus: histograms and counters observed in
the process that does the work (console.metrics serves them, with the figures it reads from the database).

Everything here is labelled, so no value exists until a process first observes it. With PROMETHEUS_MULTIPROC_DIR
set in the environment, prometheus_client keeps each process's values in a file there and /metrics adds up the
files of every process of the host (docs/metrics.md); without it, each process counts for itself.

The send path observes a group of values at a time (`observe_many`), not one call per message: a histogram's
observe() costs a lock and, in multiprocess mode, two writes to its file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from prometheus_client import Counter, Histogram, values

# Seconds. Provider calls take tens to hundreds of milliseconds, and the slow ones are those worth seeing.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From a second to a day: a message waits behind a backlog, a rate limit or a paused provider.
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)

provider_call_seconds = Histogram(
    "tidings_provider_call_seconds",
    "How long each provider call took, from its start to its answer (accepted or refused).",
    ["channel", "provider"],
    buckets=CALL_BUCKETS,
)
end_to_end_seconds = Histogram(
    "tidings_message_end_to_end_seconds",
    "From a message's creation to its acceptance by the provider, for messages meant to go at once (no send_at).",
    ["channel"],
    buckets=WAIT_BUCKETS,
)
schedule_lag_seconds = Histogram(
    "tidings_schedule_lag_seconds",
    "From a message's send_at (a schedule, a retry or a deferral) to its acceptance by the provider.",
    ["channel"],
    buckets=WAIT_BUCKETS,
)
send_deferred = Counter(
    "tidings_send_deferred",
    "Messages held back before their call: reason rate_limited, sender_rate_limited, rate_unknown or circuit_open.",
    ["provider", "reason"],
)
rate_limit_wait_seconds = Histogram(
    "tidings_rate_limit_wait_seconds",
    "How long a message held back by a send rate was deferred for.",
    ["provider"],
    buckets=WAIT_BUCKETS,
)
webhook_events = Counter(
    "tidings_webhook_events",
    "Provider webhook events received (signature checked), by kind and what applying them did.",
    ["provider", "kind", "outcome"],
)

# The kinds a webhook may report; anything else is counted as "other", so a provider's new status cannot grow the
# number of series without bound.
WEBHOOK_KINDS = frozenset(
    {
        "queued",
        "accepted",
        "scheduled",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "canceled",
        "receiving",
        "received",
        "rejected",
        "bounced",
        "soft_bounced",
        "deferred",
        "opened",
        "clicked",
        "complained",
        "unsubscribed",
        "subscribed",
        "autoresponded",
        "inbound",
        "unknown",
    }
)


def webhook_kind(kind: str) -> str:
    """The label for a webhook event's kind: itself if known, else "other"."""
    return kind if kind in WEBHOOK_KINDS else "other"


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """Observe every amount in one labelled histogram.

    One observe() per value, as documented. Writing a group's bucket counts directly through Histogram's private
    fields saved about 3 µs a message (about 1 % of a send), under the 3 % a library's internals must gain to be
    worth adapting here (docs/architecture.md, "Shims").
    """
    for amount in amounts:
        histogram.observe(amount)


class _Sent(Protocol):
    channel: str
    created_at: datetime
    send_at: datetime | None


def observe_sent(messages: Sequence[_Sent], now: datetime) -> None:
    """Messages the provider accepted, at `now`: end to end if they were to go at once, else their schedule lag."""
    at_once: dict[str, list[float]] = {}
    lagged: dict[str, list[float]] = {}
    for message in messages:
        if message.send_at is None:
            at_once.setdefault(message.channel, []).append((now - message.created_at).total_seconds())
        else:
            lagged.setdefault(message.channel, []).append((now - message.send_at).total_seconds())
    for channel, amounts in at_once.items():
        observe_many(end_to_end_seconds.labels(channel), amounts)
    for channel, amounts in lagged.items():
        observe_many(schedule_lag_seconds.labels(channel), amounts)


class _Deferred(Protocol):
    code: str
    until: float
    slots: int
    window: float
    message_ids: list[int]


RATE_REASONS = frozenset({"rate_limited", "sender_rate_limited"})


def observe_deferred(provider: str, deferrals: Iterable[_Deferred]) -> None:
    """Messages the provider gate held back, by reason; for a send rate, how long each was deferred for."""
    now = time.time()
    for deferral in deferrals:
        if not deferral.message_ids:
            continue
        send_deferred.labels(provider, deferral.code).inc(len(deferral.message_ids))
        if deferral.code in RATE_REASONS:
            # As Deferral.send_at_for spreads them: `slots` a window, from `until` on.
            waits = [
                max(deferral.until + (position // deferral.slots if deferral.slots else 0) * deferral.window - now, 0)
                for position in range(len(deferral.message_ids))
            ]
            observe_many(rate_limit_wait_seconds.labels(provider), waits)


def share_files_across_work_horses() -> None:
    """In multiprocess mode, let the work horses an RQ worker forks (one per job) write one set of files, named
    after the worker, instead of a new set per job.

    prometheus_client names its files after the process id, and /metrics reads every file on each scrape: a new
    set per job would pile up thousands an hour. The horses of one worker run one at a time, so they may share: each
    new horse reads the values its predecessors left in the files (the identity differs from the parent's, which
    makes prometheus_client reopen them) and adds to them. Call in the worker before its first fork.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    worker_pid = os.getpid()

    def process_identity() -> int | str:
        pid = os.getpid()
        return pid if pid == worker_pid else f"horse-of-{worker_pid}"

    values.ValueClass = values.MultiProcessValue(process_identifier=process_identity)
