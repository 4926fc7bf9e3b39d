"""What /metrics exposes: the figures read from the database and Redis at scrape time, beside the histograms and
counters the send path and the webhooks observe in their processes (deliveries.instruments).

Read at scrape, global and exact whichever host did the work: messages by channel and status (the analytics
rollups), the send queue's depth and oldest message per priority, each provider's circuit breaker. Those reads are
cached for METRICS_CACHE_SECONDS, so several Prometheus servers (or a fast scrape interval) cost one read. Observed in
process: provider call latency, end-to-end latency, schedule lag, rate-limit deferrals, webhook events; with
PROMETHEUS_MULTIPROC_DIR, the sum over every process of this host that wrote to that directory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from analytics.selectors import totals
from content.models import Channel
from deliveries.backends import provider_for
from deliveries.circuit_breakers import ProviderBreaker
from deliveries.models import Message, Priority, Status

logger = logging.getLogger(__name__)

CACHE_KEY = "tidings:metrics:figures"
# A breaker's state as a number, so a panel can draw it and an alert compare it.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
STATUSES = frozenset(Status.values)


def message_totals() -> dict[tuple[str, str], int]:
    """(channel, metric) -> count, all time, from the analytics rollups: how many times messages reached each
    status, and the providers' reports (opened, clicked, bounced, complained, opted_out)."""
    return totals()


def queue_figures() -> dict[str, dict[str, float]]:
    """Per priority: how many messages are queued (waiting for a worker), and the age in seconds of the oldest.

    One grouped query on the partial index of queued messages (message_queued_at)."""
    now = timezone.now()
    figures = {priority: {"depth": 0.0, "oldest_age": 0.0} for priority in Priority.values}
    rows = (
        Message.objects.filter(status=Status.QUEUED)
        .values("priority")
        .annotate(depth=Count("pk"), oldest=Min("queued_at"))
        .order_by()
    )
    for row in rows:
        oldest = row["oldest"]
        figures[row["priority"]] = {
            "depth": float(row["depth"]),
            "oldest_age": max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
        }
    return figures


def breaker_states() -> dict[str, int]:
    """Each configured provider's circuit breaker: 0 closed, 1 half-open, 2 open. A provider whose state Redis
    cannot tell is left out."""
    states = {}
    for channel in Channel.values:
        try:
            provider = provider_for(channel)
        except (ImportError, ValueError, ImproperlyConfigured):  # no usable backend: no breaker to show
            continue
        state = ProviderBreaker(provider).status().state
        if state in BREAKER_STATES:
            states[provider] = BREAKER_STATES[state]
    return states


def read_figures() -> dict[str, Any]:
    """What the collectors show, read afresh; a source that cannot be read is marked down, not raised."""
    figures: dict[str, Any] = {"up": {}}
    try:
        figures["messages"] = sorted(message_totals().items())
        figures["queues"] = queue_figures()
        figures["up"]["database"] = 1
    except DatabaseError as error:
        logger.warning("Metrics: the database could not be read: %s", error)
        figures["up"]["database"] = 0
    try:
        figures["breakers"] = breaker_states()
        figures["up"]["redis"] = 1
    except RedisError as error:
        logger.warning("Metrics: Redis could not be read: %s", error)
        figures["up"]["redis"] = 0
    return figures


def cached_figures() -> dict[str, Any]:
    """read_figures(), kept METRICS_CACHE_SECONDS in the cache so that many scrapes cost one read."""
    seconds = settings.METRICS_CACHE_SECONDS
    if seconds <= 0:
        return read_figures()
    try:
        figures = cache.get(CACHE_KEY)
    except RedisError:
        return read_figures()
    if figures is None:
        figures = read_figures()
        with contextlib.suppress(RedisError):  # not cached this time: the next scrape reads again
            cache.set(CACHE_KEY, figures, timeout=seconds)
    return figures


class FiguresCollector(Collector):
    """The figures read at scrape time (cached_figures), as Prometheus metric families."""

    def collect(self) -> Iterator[Metric]:
        figures = cached_figures()
        up = GaugeMetricFamily(
            "tidings_metrics_source_up", "Whether /metrics could read its source (database, redis).", labels=["source"]
        )
        for source, value in sorted(figures["up"].items()):
            up.add_metric([source], value)
        yield up
        if "messages" in figures:
            messages = CounterMetricFamily(
                "tidings_messages",
                "Times messages reached a status, by channel (the analytics rollups: every host's work).",
                labels=["channel", "status"],
            )
            events = CounterMetricFamily(
                "tidings_message_events",
                "Providers' reports and replies about messages (opened, clicked, bounced, complained, opted_out).",
                labels=["channel", "event"],
            )
            for (channel, metric), count in figures["messages"]:
                (messages if metric in STATUSES else events).add_metric([channel, metric], count)
            yield messages
            yield events
        if "queues" in figures:
            depth = GaugeMetricFamily(
                "tidings_queue_depth", "Messages queued and waiting for a worker, by priority.", labels=["priority"]
            )
            oldest = GaugeMetricFamily(
                "tidings_queue_oldest_age_seconds",
                "How long the oldest queued message has waited, by priority (0 when none waits).",
                labels=["priority"],
            )
            for priority, values in figures["queues"].items():
                depth.add_metric([priority], values["depth"])
                oldest.add_metric([priority], values["oldest_age"])
            yield depth
            yield oldest
        if "breakers" in figures:
            breakers = GaugeMetricFamily(
                "tidings_provider_breaker_state",
                "Each provider's circuit breaker: 0 closed, 1 half-open (one call probes), 2 open (calls paused).",
                labels=["provider"],
            )
            for provider, state in sorted(figures["breakers"].items()):
                breakers.add_metric([provider], state)
            yield breakers


def rq_collector() -> Collector | None:
    """django-rq's collector (workers, jobs by queue and status), or None if it cannot be imported. Its job counts
    are RQ jobs, each carrying up to SEND_BATCH_SIZE messages: per-message figures are ours."""
    try:
        from django_rq.contrib.prometheus import RQCollector
    except ImportError:  # pragma: no cover - shipped with django-rq 4
        return None
    return RQCollector() if RQCollector is not None else None


def metrics_registry() -> CollectorRegistry:
    """A registry for one scrape: the figures, django-rq's collector, and the observed metrics (this process's, or
    with PROMETHEUS_MULTIPROC_DIR every process's files there)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector())
    collector = rq_collector()
    if collector is not None:
        registry.register(collector)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(ThisProcessCollector())
    return registry


class ThisProcessCollector(Collector):
    """This process's own metrics: the default registry, where deliveries.instruments registers its metrics (and
    prometheus_client its process and gc figures)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
