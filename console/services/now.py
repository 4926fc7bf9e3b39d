"""The dashboard's "Now" panel: what the pipeline is doing at this moment, read in a few bounded queries.

Every figure comes from an index or from Redis, never from a scan of the messages table: counts stop at
COUNT_CAP (shown as "100,000+"), the oldest waiting message is the first entry of the queued index, throughput,
failure rate and schedule lag come from analytics' per-minute rollups. The whole snapshot is built once and kept
in the shared cache (django-redis) for DASHBOARD_CACHE_SECONDS, so many staff watching the dashboard, in any web
process, cost one build per few seconds; breaker and rate-limit state are read once per build.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rq.job import Job
from rq.worker import Worker

from analytics import selectors as analytics
from content.models import Channel
from deliveries.health import dispatcher_status, providers_status
from deliveries.models import Message, Priority, Status
from deliveries.services.dispatch import SEND_JOB

logger = logging.getLogger(__name__)

CACHE_KEY = "tidings:console:now:v1"
# Counts past this are shown as "100,000+": counting a backlog row by row would cost more than the answer is worth.
COUNT_CAP = 100_000
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)


def capped_count(queryset: QuerySet[Message], cap: int = COUNT_CAP) -> int:
    """How many rows, counting no further than `cap` (`SELECT COUNT(*) FROM (... LIMIT cap)`)."""
    return queryset.order_by()[:cap].count()


def queues_now(now: datetime) -> list[dict[str, Any]]:
    """Per priority queue: messages waiting (queued), the oldest one's age, and the send jobs Redis holds for it."""
    queued = Message.objects.filter(status=Status.QUEUED)
    rows = []
    for priority in Priority:
        waiting = queued.filter(priority=priority)
        oldest = waiting.order_by("queued_at").values_list("queued_at", flat=True).first()
        try:
            jobs: int | None = django_rq.get_queue(priority.value).count
        except (RedisError, OSError):
            jobs = None
        rows.append(
            {
                "name": priority.value,
                "label": priority.label,
                "waiting": capped_count(waiting),
                "oldest_at": oldest,
                "oldest_age_seconds": (now - oldest).total_seconds() if oldest else None,
                "jobs": jobs,
            }
        )
    return rows


def scheduled_now(now: datetime) -> dict[str, Any]:
    """Messages scheduled for later (not waiting: they are not due), when the next is due, and how many are due
    but not yet queued (the dispatcher is behind or stopped)."""
    scheduled = Message.objects.filter(status=Status.SCHEDULED)
    next_due = scheduled.order_by("send_at").values_list("send_at", flat=True).first()
    return {
        "count": capped_count(scheduled),
        "next_due_at": next_due,
        "overdue": capped_count(scheduled.filter(send_at__lte=now)),
    }


def in_flight_now() -> dict[str, Any]:
    """Messages being sent now (status `sending`: a provider call in flight), by channel. Bounded by the workers'
    SEND_CONCURRENCY, so grouping them is cheap."""
    by_channel = dict(
        Message.objects.filter(status=Status.SENDING)
        .order_by()
        .values_list("channel")
        .annotate(count=Count("pk"))[:COUNT_CAP]
    )
    return {"count": sum(by_channel.values()), "by_channel": by_channel}


def workers_now() -> dict[str, Any]:
    """Every live RQ worker with what it does: idle, or "sending N messages of sms" (our jobs carry message ids,
    so the job's channel is read from its messages, one query for all workers)."""
    try:
        workers = Worker.all(connection=django_rq.get_connection("default"))
        current: dict[str, Job | None] = {worker.name: worker.get_current_job() for worker in workers}
    except (RedisError, OSError) as error:
        return {"ok": False, "error": str(error), "workers": []}
    ids_of = {
        name: list(job.args[0])
        for name, job in current.items()
        if job is not None and job.func_name == SEND_JOB and job.args
    }
    channel_of = dict(
        Message.objects.filter(pk__in=[pk for ids in ids_of.values() for pk in ids]).values_list("pk", "channel")
    )
    rows = []
    for worker in sorted(workers, key=lambda w: w.name):
        job = current[worker.name]
        if worker.name in ids_of:
            channels = Counter(channel_of.get(pk, "?") for pk in ids_of[worker.name])
            doing = "sending " + ", ".join(
                f"{n} message{'s' if n != 1 else ''} of {channel}" for channel, n in channels.most_common()
            )
        elif job is not None:
            doing = f"running {job.func_name}"
        else:
            doing = "idle"
        rows.append(
            {
                "name": worker.name,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "state": worker.get_state(),
                "queues": worker.queue_names(),
                "doing": doing,
                "last_heartbeat": worker.last_heartbeat,
            }
        )
    return {"ok": bool(rows), "workers": rows}


def redis_memory_now() -> dict[str, Any]:
    """Redis INFO memory: used, the limit (0 is no limit) and what Redis does at the limit."""
    try:
        info = django_rq.get_connection("default").info("memory")
    except (RedisError, OSError) as error:
        return {"ok": False, "error": str(error)}
    used = int(info.get("used_memory", 0))
    limit = int(info.get("maxmemory", 0))
    return {
        "ok": True,
        "used_bytes": used,
        "max_bytes": limit or None,
        "used_share": round(used / limit, 3) if limit else None,
        "policy": info.get("maxmemory_policy", ""),
    }


def failure_share(outcomes: dict[str, int]) -> float | None:
    """Of the messages that reached an outcome, the share that did not get through: failed, or sent and then
    reported undelivered. None when nothing reached an outcome."""
    failed = outcomes.get("failed", 0) + outcomes.get("undelivered", 0)
    decided = outcomes.get("sent", 0) + outcomes.get("failed", 0)
    return round(failed / decided, 4) if decided else None


def throughput_now(now: datetime) -> dict[str, Any]:
    """Sends per minute over the last hour, per channel and failed, the failure rate over 5 minutes and an hour,
    and the schedule lag (send_at to the provider's answer) over the hour, all from analytics' rollups."""
    by_channel = {channel: analytics.per_minute(60, channel=channel) for channel in Channel.values}
    series = list(by_channel.values())
    minutes = [row["minute"] for row in series[0]]
    sent = {channel: [row["sent"] for row in rows] for channel, rows in by_channel.items()}
    return {
        "minutes": minutes,
        "sent": sent,
        "failed": [sum(rows[i]["failed"] + rows[i]["undelivered"] for rows in series) for i in range(len(minutes))],
        "sent_last_hour": sum(sum(counts) for counts in sent.values()),
        "failure_rate_5m": failure_share(analytics.outcomes_since(now - timedelta(minutes=5))),
        "failure_rate_1h": failure_share(analytics.outcomes_since(now - timedelta(hours=1))),
        "schedule_lag": analytics.schedule_lag(now - timedelta(hours=1)),
    }


def now_build(now: datetime | None = None) -> dict[str, Any]:
    """The panel's figures, read now."""
    now = now or timezone.now()
    return {
        "as_of": now,
        "queues": queues_now(now),
        "scheduled": scheduled_now(now),
        "in_flight": in_flight_now(),
        "workers": workers_now(),
        "dispatcher": dispatcher_status(now.timestamp()),
        "providers": providers_status(),
        "redis": redis_memory_now(),
        "throughput": throughput_now(now),
    }


def now_snapshot() -> dict[str, Any]:
    """The panel's figures, built at most once per DASHBOARD_CACHE_SECONDS across every web process."""
    try:
        cached = cache.get(CACHE_KEY)
    except CACHE_ERRORS:
        return now_build()
    if cached is not None:
        return cached
    snapshot = now_build()
    try:
        cache.set(CACHE_KEY, snapshot, timeout=settings.DASHBOARD_CACHE_SECONDS)
    except CACHE_ERRORS:
        logger.warning("Could not cache the dashboard's figures (Redis unreachable); each view builds them.")
    return snapshot
