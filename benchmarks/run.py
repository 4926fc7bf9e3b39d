#!/usr/bin/env python
"""Tidings benchmark suite: `make bench` or `python benchmarks/run.py`.

Starts what it needs on this machine — a benchmark database on PostgreSQL, its own Redis database, the fake
Twilio and Postmark servers with a set latency, worker and dispatcher processes, gunicorn for the API runs —
prints a table and writes benchmarks/results/<date>.json. `--quick` runs every scenario at a small size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Overridable so that two runs (two checkouts) can share the machine without meeting.
BENCH_DB = os.environ.get("BENCH_DB", "tidings_bench")
BENCH_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
_PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "18100"))
TWILIO_PORT, POSTMARK_PORT, MESSENGER_PORT = _PORT_BASE + 1, _PORT_BASE + 2, _PORT_BASE + 3
WEB_PORT = _PORT_BASE - 100
ACCOUNT_SID, AUTH_TOKEN, POSTMARK_TOKEN = "ACfake" + "0" * 28, "fake-auth-token", "fake-postmark-token"  # noqa: S105


def bench_env(args) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "messaging_project.settings.base",
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": BENCH_REDIS,
        "LOG_LEVEL": "WARNING",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{TWILIO_PORT}",
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "POSTMARK_SERVER_TOKEN": POSTMARK_TOKEN,
        "POSTMARK_API_URL": f"http://127.0.0.1:{POSTMARK_PORT}/",
        "DEFAULT_FROM_EMAIL": "Tidings <bench@example.com>",
        "RECONCILE_AFTER": "600",
        "PYTHONUNBUFFERED": "1",
    }


class Bench:
    """Owns the processes a run starts, and stops them all at the end."""

    def __init__(self, args):
        self.args = args
        self.env = bench_env(args)
        self.processes: list[subprocess.Popen] = []

    # --- processes -------------------------------------------------------------------------------
    def spawn(self, *command: str, env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.processes.append(process)
        return process

    def manage(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        return self.spawn(sys.executable, "manage.py", *args, env=env)

    def stop(self, process: subprocess.Popen, timeout: float = 30) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process, timeout=10)

    # --- setup -----------------------------------------------------------------------------------
    def setup(self) -> None:
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        self._create_database()
        call_command("migrate", verbosity=0, skip_checks=True)
        self.reset()
        latency = str(self.args.latency)
        self.spawn(
            sys.executable,
            "-m",
            "fake_providers",
            "--twilio-port",
            str(TWILIO_PORT),
            "--postmark-port",
            str(POSTMARK_PORT),
            "--messenger-port",  # unused here, but its default port would collide with another run's
            str(MESSENGER_PORT),
            "--latency",
            latency,
        )
        self.wait_http(f"http://127.0.0.1:{TWILIO_PORT}/_fake/config")

    def _create_database(self) -> None:
        if not self.args.database_url.startswith("postgres"):
            return
        import psycopg

        admin_url = self.args.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{BENCH_DB}"')

    def reset(self) -> None:
        """Empty tables, queues and the fakes' records between scenarios."""
        import django_rq
        import requests
        from django.db import connection

        from deliveries.models import Message

        with connection.cursor() as cursor:
            table_names = [Message._meta.db_table, "deliveries_messageevent"]
            if connection.vendor == "postgresql":
                cursor.execute(f"TRUNCATE {', '.join(table_names)} RESTART IDENTITY CASCADE")
            else:
                for table in reversed(table_names):
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        django_rq.get_connection("default").flushdb()
        for port in (TWILIO_PORT, POSTMARK_PORT):
            with contextlib.suppress(requests.RequestException):
                requests.post(f"http://127.0.0.1:{port}/_fake/reset", timeout=5)
        if self.processes:
            self.configure_fake(latency=self.args.latency)

    def configure_fake(self, **changes) -> None:
        import requests

        for port in (TWILIO_PORT, POSTMARK_PORT):
            requests.post(f"http://127.0.0.1:{port}/_fake/config", json=changes, timeout=5).raise_for_status()

    @staticmethod
    def wait_http(url: str, timeout: float = 30) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise SystemExit(f"{url} did not answer within {timeout}s")

    def received(self, port: int = TWILIO_PORT) -> list[dict]:
        import requests

        return requests.get(f"http://127.0.0.1:{port}/_fake/messages", timeout=60).json()["messages"]

    # --- helpers ---------------------------------------------------------------------------------
    def create_messages(self, count: int, *, channel: str = "sms", send_at=None, enqueue: bool = True) -> None:
        from deliveries.services.bulk import messages_create_many
        from deliveries.services.messages import message_request_validate

        def items():
            for i in range(count):
                if channel == "sms":
                    yield message_request_validate(
                        channel="sms", to=f"+1415{7000000 + i}", body=f"Bench {i}", send_at=send_at
                    )
                else:
                    yield message_request_validate(
                        channel="email", to=f"user{i}@example.com", subject="Bench", body=f"Bench {i}", send_at=send_at
                    )

        messages_create_many(items=items(), chunk_size=5000)

    def wait_until_sent(self, count: int, timeout: float) -> float:
        from deliveries.models import Message, Status

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = Message.objects.filter(status__in=[Status.SENT, Status.FAILED]).count()
            if done >= count:
                return time.monotonic()
            time.sleep(0.2)
        raise SystemExit(f"only {done} of {count} messages finished within {timeout}s")

    def workers(self, count: int, *queues: str) -> list[subprocess.Popen]:
        return [self.manage("run_worker", *queues, "-v", "0") for _ in range(count)]


def rate_from_receipts(receipts: list[dict]) -> float:
    times = sorted(r["received_at"] for r in receipts)
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


# --- scenarios -----------------------------------------------------------------------------------
def scenario_send(bench: Bench, channel: str, count: int) -> dict:
    bench.reset()
    bench.create_messages(count, channel=channel)
    workers = bench.workers(2)
    started = time.monotonic()
    bench.wait_until_sent(count, timeout=max(120, count / 50))
    elapsed = time.monotonic() - started
    for worker in workers:
        bench.stop(worker)
    receipts = bench.received(TWILIO_PORT if channel == "sms" else POSTMARK_PORT)
    from deliveries.models import Message, Status

    sent = Message.objects.filter(status=Status.SENT).count()
    return {
        "messages": count,
        "sent": sent,
        "received_by_provider": len(receipts),
        "rate_per_s": round(rate_from_receipts(receipts), 1),
        "wall_seconds_including_worker_start": round(elapsed, 2),
    }


def scenario_naive(bench: Bench, count: int) -> dict:
    """One plain django-rq job per message, 2 default (forking) workers."""
    import django_rq
    from rq import Queue

    bench.reset()
    bench.create_messages(count, enqueue=False)
    django_rq.get_connection("default").flushdb()  # drop our batched jobs; queue one naive job per message
    from deliveries.models import Message

    ids = list(Message.objects.values_list("pk", flat=True))
    queue = django_rq.get_queue("default")
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many(
            [Queue.prepare_data("benchmarks.naive_jobs.send_one", args=(pk,)) for pk in ids], pipeline=pipe
        )
        pipe.execute()
    workers = bench.workers(2, "default")
    deadline = time.monotonic() + max(120, count / 5)
    while queue.count and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    for worker in workers:
        bench.stop(worker)
    receipts = bench.received()
    return {
        "messages": count,
        "received_by_provider": len(receipts),
        "rate_per_s": round(rate_from_receipts(receipts), 1),
    }


def scenario_noop(bench: Bench, count: int) -> dict:
    import django_rq
    from rq import Queue

    bench.reset()
    queue = django_rq.get_queue("default")
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("benchmarks.naive_jobs.noop") for _ in range(count)], pipeline=pipe)
        pipe.execute()
    started = time.monotonic()
    worker = bench.manage("run_worker", "default", "--burst", "-v", "0")
    worker.wait(timeout=max(120, count / 10))
    elapsed = time.monotonic() - started
    return {"jobs": count, "rate_per_s": round(count / elapsed, 1), "worker": "rq.Worker (fork per job), 1 process"}


def scenario_schedule(bench: Bench, count: int) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    bench.reset()
    workers = bench.workers(2)
    dispatcher = bench.manage("run_dispatcher")
    due = (timezone.now() + timedelta(seconds=8)).replace(microsecond=0)
    bench.create_messages(count, send_at=due)
    bench.wait_until_sent(count, timeout=120)
    for process in [*workers, dispatcher]:
        bench.stop(process)
    lags = sorted(r["received_at"] - due.timestamp() for r in bench.received())
    return {
        "messages_due_in_one_second": count,
        "lag_p50_s": round(statistics.median(lags), 3),
        "lag_p99_s": round(lags[int(len(lags) * 0.99) - 1], 3),
        "lag_max_s": round(lags[-1], 3),
        "sent_early": sum(1 for lag in lags if lag < 0),
    }


def scenario_fanout(bench: Bench, count: int) -> dict:
    bench.reset()
    script = (
        "import django, resource, time, sys; django.setup();"
        "from benchmarks.run import Bench;"
        "t = time.monotonic(); Bench.create_messages(None, int(sys.argv[1]));"
        "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, str(count)], cwd=ROOT, env=bench.env, capture_output=True, text=True, check=True
    ).stdout.split()
    import django_rq

    from deliveries.models import Message

    return {
        "recipients": count,
        "seconds_rows_written_and_queued": round(float(output[0]), 2),
        "peak_memory_mb": round(int(output[1]) / 1024, 1),
        "rows": Message.objects.count(),
        "jobs_queued": django_rq.get_queue("default").count,
    }


def scenario_cost(bench: Bench, count: int) -> dict:
    """SQL statements and Redis round trips per delivered message, counted inside one in-process worker."""
    import django_rq
    from django.db import connection
    from redis.connection import Connection
    from rq import SimpleWorker

    bench.reset()
    bench.create_messages(count)
    statements = 0
    round_trips = 0

    def count_sql(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    original_send = Connection.send_packed_command

    def counting_send(self, command, check_health=True):
        nonlocal round_trips
        round_trips += 1
        return original_send(self, command, check_health)

    Connection.send_packed_command = counting_send
    try:
        with connection.execute_wrapper(count_sql):
            django_rq.get_worker("default", worker_class=SimpleWorker).work(burst=True)
    finally:
        Connection.send_packed_command = original_send
    return {
        "messages": count,
        "sql_per_message": round(statements / count, 2),
        "redis_round_trips_per_message": round(round_trips / count, 3),
        "note": "counted in one in-process SimpleWorker, including RQ's own bookkeeping",
    }


def scenario_api(bench: Bench, seconds: float) -> dict:
    """POST /api/v1/messages/ (and the batch endpoint) against gunicorn, from a separate load-generator process."""
    from deliveries.services.api_keys import api_key_create

    bench.reset()
    _, raw_key = api_key_create(name=f"bench-{time.time_ns()}")
    web = bench.spawn(
        sys.executable,
        "-m",
        "gunicorn",
        "messaging_project.wsgi",
        "--bind",
        f"127.0.0.1:{WEB_PORT}",
        "--workers",
        "2",
        # As the Procfile: threads keep the load generator's connections alive and overlap I/O waits.
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--log-level",
        "warning",
    )
    base = f"http://127.0.0.1:{WEB_PORT}"
    bench.wait_http(f"{base}/health/live")

    def load(*extra: str) -> dict:
        output = subprocess.run(
            [sys.executable, "benchmarks/loadgen.py", base, raw_key, "--seconds", str(seconds), *extra],
            cwd=ROOT,
            env=bench.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])

    try:
        single = load("--concurrency", "16")
        batch = load("--concurrency", "4", "--batch", "500")
    finally:
        bench.stop(web)
    return {
        "single_accepted_per_s": single["accepted_messages_per_s"],
        "single_p50_ms": single["latency_p50_ms"],
        "single_p99_ms": single["latency_p99_ms"],
        "single_statuses": single["statuses"],
        "batch_messages_per_s": batch["accepted_messages_per_s"],
        "batch_p50_ms": batch["latency_p50_ms"],
        "seconds_each": seconds,
        "gunicorn_workers": "2 x 4 threads (gthread)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
    parser.add_argument("--latency", type=float, default=0.05, help="fake provider latency in seconds")
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the suite itself")
    parser.add_argument("--only", default="", help="comma-separated scenarios to run")
    args = parser.parse_args()
    sizes = {
        "noop": 500 if args.quick else 3000,
        "naive": 200 if args.quick else 2000,
        "send_sms": 1000 if args.quick else 20000,
        "send_email": 500 if args.quick else 20000,
        "schedule": 500 if args.quick else 5000,
        "fanout": 5000 if args.quick else 100000,
        "cost": 500 if args.quick else 5000,
        "api_seconds": 5 if args.quick else 30,
    }
    scenarios = {
        "fanout": lambda b: scenario_fanout(b, sizes["fanout"]),
        "send_sms": lambda b: scenario_send(b, "sms", sizes["send_sms"]),
        "send_email": lambda b: scenario_send(b, "email", sizes["send_email"]),
        "naive": lambda b: scenario_naive(b, sizes["naive"]),
        "noop": lambda b: scenario_noop(b, sizes["noop"]),
        "schedule": lambda b: scenario_schedule(b, sizes["schedule"]),
        "cost": lambda b: scenario_cost(b, sizes["cost"]),
        "api": lambda b: scenario_api(b, sizes["api_seconds"]),
    }
    wanted = [name for name in (args.only.split(",") if args.only else scenarios) if name]
    bench = Bench(args)
    results: dict[str, dict] = {}
    try:
        bench.setup()
        for name in wanted:
            print(f"… {name}", file=sys.stderr, flush=True)
            results[name] = scenarios[name](bench)
    finally:
        bench.stop_all()
    report(results, args)


def report(results: dict[str, dict], args) -> None:
    sms, naive, noop = results.get("send_sms", {}), results.get("naive", {}), results.get("noop", {})
    if sms.get("rate_per_s") and naive.get("rate_per_s"):
        sms["ratio_to_naive_django_rq"] = round(sms["rate_per_s"] / naive["rate_per_s"], 1)
    if sms.get("rate_per_s") and noop.get("rate_per_s"):
        sms["ratio_to_noop_rq_jobs"] = round(sms["rate_per_s"] / noop["rate_per_s"], 1)
    now = datetime.now(UTC)
    print(f"\nTidings benchmarks — {now:%Y-%m-%d %H:%M} UTC, fake provider latency {args.latency * 1000:.0f} ms")
    print(f"{'scenario':<12} {'figure':<40} value")
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name:<12} {key:<40} {value}")
    record = {
        "date": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "latency_s": args.latency,
        "quick": args.quick,
        "results": results,
        "benchmark_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = ROOT / "benchmarks" / "results" / f"{datetime.now(UTC):%Y-%m-%d}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nWritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
