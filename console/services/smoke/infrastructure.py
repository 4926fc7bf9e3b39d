"""The smoke test's checks of what every message needs: the database (reachable, migrated), a worker taking jobs
and a dispatcher beating. Read through deliveries.health, as /health/ready reads them."""

from __future__ import annotations

import sqlite3

import django_rq
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from rq.worker import Worker

from deliveries.health import dispatcher_status, workers_status

from .results import CheckResult, one_line


def database_where() -> str:
    """Where the database is, without its password: `host:port/name`, or the SQLite file."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return str(config["NAME"])
    host = config.get("HOST") or "local socket"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"{host}{port}/{config['NAME']}"


def database_version() -> str:
    if connection.vendor == "postgresql":
        version = connection.pg_version  # type: ignore[attr-defined]  # PostgreSQL's backend only
        return f"PostgreSQL {version // 10000}.{version % 10000}"
    if connection.vendor == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    return connection.display_name


def database_check() -> CheckResult:
    """A query, then the migrations: every one of this release applied, and none the release does not know (a
    newer release migrated this database, and this code may not read its tables)."""
    where = database_where()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        version = database_version()
        executor = MigrationExecutor(connection)
        missing = executor.migration_plan(executor.loader.graph.leaf_nodes())
        unknown = sorted(set(executor.loader.applied_migrations) - set(executor.loader.disk_migrations))
    except DatabaseError as error:
        return CheckResult.fail(
            "database",
            f"unreachable at {where} ({one_line(error)})",
            "check DATABASE_URL, and that the database answers from this host",
        )
    if missing:
        first, _backwards = missing[0]
        return CheckResult.fail(
            "database",
            f"{version} at {where}, {len(missing)} migration(s) not applied (first: {first.app_label}.{first.name})",
            "run manage.py migrate (the release step)",
        )
    if unknown:
        app, name = unknown[0]
        return CheckResult.fail(
            "database",
            f"{version} at {where} has {len(unknown)} migration(s) this release does not know (first: {app}.{name})",
            "a newer release migrated it: deploy that release again, or migrate back with it before rolling back",
        )
    return CheckResult.ok("database", f"{version} at {where}, migrations applied")


def workers_check() -> CheckResult:
    status = workers_status()
    if status.get("error"):
        return CheckResult.fail(
            "workers", f"unreadable ({status['error']})", "fix the Redis connection of the queues first"
        )
    if not status["ok"]:
        return CheckResult.fail(
            "workers",
            "none alive: messages are accepted but nothing is sent",
            "start manage.py run_worker, on a host that reaches this Redis",
        )
    unserved = queues_without_worker()
    if unserved:
        return CheckResult.fail(
            "workers",
            f"{status['count']} alive, but none listens to {', '.join(unserved)}: those messages wait forever",
            "start manage.py run_worker without naming queues (it listens to high, default and low)",
        )
    queued = ", ".join(f"{name} {count}" for name, count in status["queues"].items())
    return CheckResult.ok("workers", f"{status['count']} alive, every queue served; jobs waiting: {queued}")


def queues_without_worker() -> list[str]:
    """The configured queues no live worker listens to (a worker started with only some queues named)."""
    served = {
        name for worker in Worker.all(connection=django_rq.get_connection("default")) for name in worker.queue_names()
    }
    return [name for name in settings.RQ_QUEUES if name not in served]


def dispatcher_check() -> CheckResult:
    status = dispatcher_status()
    if status.get("error"):
        return CheckResult.fail(
            "dispatcher", f"heartbeat unreadable ({status['error']})", "fix the Redis connection of the queues first"
        )
    limit = f"limit {status['max_age_seconds']:g} s"
    if status["last_beat_age_seconds"] is None:
        return CheckResult.fail(
            "dispatcher",
            "none has beaten: scheduled messages, retries and campaigns wait",
            "start manage.py run_dispatcher",
        )
    if not status["ok"]:
        return CheckResult.fail(
            "dispatcher",
            f"last beat {status['last_beat_age_seconds']:.0f} s ago ({limit}): it died or hangs",
            "restart manage.py run_dispatcher and read its log",
        )
    return CheckResult.ok(
        "dispatcher", f"{status['alive']} alive, last beat {status['last_beat_age_seconds']:.0f} s ago ({limit})"
    )
