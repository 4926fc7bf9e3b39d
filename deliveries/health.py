"""Read-only probes of what the pipeline depends on: the database, Redis and the workers."""

from __future__ import annotations

import time
from typing import Any

import django_rq
from django.db import connection
from redis.exceptions import RedisError
from rq.worker import Worker


def redact_url(url: str) -> str:
    """A Redis URL without its password or options, fit for messages and logs."""
    url = url.split("?", 1)[0]
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


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


def workers_status() -> dict[str, Any]:
    """Live workers and queue depths. No workers is reported, not fatal: messages wait safely in the queue."""
    try:
        redis = django_rq.get_connection("default")
        workers = Worker.all(connection=redis)
        queues = {name: django_rq.get_queue(name).count for name in ("high", "default", "low")}
    except (RedisError, OSError) as error:
        return {"ok": False, "count": 0, "error": str(error)}
    return {"ok": bool(workers), "count": len(workers), "queues": queues}
