"""Read-only probes of what the pipeline depends on: the database, Redis, the workers and the providers."""

from __future__ import annotations

import time
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection
from redis.exceptions import RedisError
from rq.worker import Worker

from messaging_project.redis_connections import RedisConfig


def redact_url(url: str) -> str:
    """A Redis URL without its password or options, fit for messages and logs."""
    url = url.split("?", 1)[0]
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def redis_location() -> str:
    """Where the configured Redis is (a URL, or a Sentinel master and its sentinels), without secrets."""
    return RedisConfig.from_settings(settings).describe()


def database_status() -> dict[str, Any]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means "not ready"
        return {"ok": False, "error": f"{error.__class__.__name__}: {error}".strip()}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def redis_status() -> dict[str, Any]:
    started = time.monotonic()
    try:
        django_rq.get_connection("default").ping()
    except (RedisError, OSError) as error:
        return {"ok": False, "error": str(error)}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def redis_write_status() -> dict[str, Any]:
    """Whether Redis takes writes, which a ping does not tell: a master demoted to a replica still answers pings but
    refuses writes (READONLY) until a failover moves its address to the new master. One short-lived key."""
    try:
        django_rq.get_connection("default").set("tidings:write-probe", "1", ex=60)
    except (RedisError, OSError) as error:
        return {"ok": False, "error": str(error)}
    return {"ok": True}


def workers_status() -> dict[str, Any]:
    """Live workers and queue depths. No workers is reported, not fatal: messages wait safely in the queue."""
    try:
        redis = django_rq.get_connection("default")
        workers = Worker.all(connection=redis)
        queues = {name: django_rq.get_queue(name).count for name in ("high", "default", "low")}
    except (RedisError, OSError) as error:
        return {"ok": False, "count": 0, "error": str(error)}
    return {"ok": bool(workers), "count": len(workers), "queues": queues}


def providers_status() -> dict[str, Any]:
    """By channel: its provider's circuit breaker (closed, open with when it will be tried again, half-open) and
    its send rate.

    `ok` is false while any breaker is not closed: messages for that provider wait instead of going out.
    """
    from content.models import Channel

    from .backends import provider_for
    from .circuit_breakers import ProviderBreaker
    from .rate_limits import SendRateLimiter

    providers: dict[str, Any] = {}
    for channel in Channel.values:
        try:
            provider = provider_for(channel)
        except Exception as error:  # a misconfigured backend shows here rather than breaking the probe
            providers[channel] = {"ok": False, "error": f"{error.__class__.__name__}: {error}"}
            continue
        breaker = ProviderBreaker(provider).status()
        entry = {"provider": provider, "breaker": breaker.as_dict(), "ok": breaker.state == "closed"}
        try:
            entry["rate"] = SendRateLimiter(channel, provider).describe()
        except (RedisError, OSError) as error:
            entry["rate"] = {"error": str(error)}
        providers[channel] = entry
    return {"ok": all(entry["ok"] for entry in providers.values()), "providers": providers}


def dispatcher_status(now: float | None = None) -> dict[str, Any]:
    """The dispatchers' heartbeats: `ok` while the most recent is younger than DISPATCHER_HEARTBEAT_MAX_AGE."""
    from .services.heartbeat import dispatcher_beats

    max_age = settings.DISPATCHER_HEARTBEAT_MAX_AGE
    try:
        beats = dispatcher_beats(now)
    except (RedisError, OSError) as error:
        return {"ok": False, "error": str(error), "max_age_seconds": max_age}
    alive = [beat for beat in beats if beat.age(now) <= max_age]
    latest = beats[0] if beats else None
    return {
        "ok": bool(alive),
        "alive": len(alive),
        "last_beat_age_seconds": round(latest.age(now), 1) if latest else None,
        "max_age_seconds": max_age,
        "dispatchers": [{"name": beat.name, "age_seconds": round(beat.age(now), 1)} for beat in beats],
    }


def live_workers_status() -> dict[str, Any]:
    """Only how many workers are alive (RQ's registrations that have not expired): what anonymous readiness
    needs, without workers_status()'s queue depths and their connections."""
    try:
        count = len(Worker.all(connection=django_rq.get_connection("default")))
    except (RedisError, OSError) as error:
        return {"ok": False, "count": 0, "error": str(error)}
    return {"ok": bool(count), "count": count}


def readiness_checks(*, details: bool = True) -> dict[str, dict[str, Any]]:
    """What readiness needs: the database, Redis, a dispatcher beating and a worker alive (both read from Redis);
    with `details`, the workers' queue depths too."""
    checks = {"database": database_status(), "redis": redis_status()}
    if checks["redis"]["ok"]:
        checks["dispatcher"] = dispatcher_status()
        checks["workers"] = workers_status() if details else live_workers_status()
    else:
        checks["dispatcher"] = {"ok": False, "error": "Redis is down"}
        checks["workers"] = {"ok": False, "count": 0, "error": "Redis is down"}
    return checks


def readiness_failures(checks: dict[str, dict[str, Any]]) -> list[str]:
    """One line per check that keeps us from being ready, saying which and how ("dispatcher: last beat 75 s ago",
    "workers: none alive"); empty when ready. Redis down is said once, not again for what is read from it."""
    failures = []
    if not checks["database"]["ok"]:
        failures.append(f"database: unreachable ({checks['database'].get('error', 'no answer')})")
    if not checks["redis"]["ok"]:
        failures.append(f"redis: unreachable ({checks['redis'].get('error', 'no answer')})")
        return failures
    dispatcher = checks["dispatcher"]
    if not dispatcher["ok"]:
        if dispatcher.get("error"):
            failures.append(f"dispatcher: heartbeat unreadable ({dispatcher['error']})")
        elif dispatcher.get("last_beat_age_seconds") is None:
            failures.append("dispatcher: none has beaten (start manage.py run_dispatcher)")
        else:
            failures.append(
                f"dispatcher: last beat {dispatcher['last_beat_age_seconds']:.0f} s ago "
                f"(limit {dispatcher['max_age_seconds']:g} s)"
            )
    if not checks["workers"]["ok"]:
        error = checks["workers"].get("error")
        failures.append(f"workers: unreadable ({error})" if error else "workers: none alive")
    return failures
