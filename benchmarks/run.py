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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.admin_1m import print_table as print_admin_table  # noqa: E402 - after the path is set
from benchmarks.admin_1m import scenario_admin_1m  # noqa: E402
from benchmarks.guard_cost import scenario_guard  # noqa: E402
from benchmarks.many_hosts import scenario_many_hosts  # noqa: E402

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
        self.fake: subprocess.Popen | None = None

    # --- processes -------------------------------------------------------------------------------
    def spawn(self, *command: str, env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.processes.append(process)
        return process

    def spawn_web(self, port: int, env: dict | None = None) -> subprocess.Popen:
        """gunicorn serving the project on 127.0.0.1:`port`, as the Procfile runs it (threads keep the load
        generator's connections alive and overlap I/O waits)."""
        return self.spawn(
            sys.executable,
            "-m",
            "gunicorn",
            "messaging_project.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--log-level",
            "warning",
            env=env,
        )

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
        self.fake = self.spawn(
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
            # Bulk sends' batches too: a send_bulk run of the same file would otherwise be its key's second run.
            table_names = [Message._meta.db_table, "deliveries_messageevent", "campaigns_batch"]
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
            # No status callbacks or tracking webhooks: no scenario listens for them (they would go to
            # PUBLIC_BASE_URL, perhaps someone's development server), and posting them costs the fake CPU.
            self.configure_fake(latency=self.args.latency, outcome="none")

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
    def create_messages(self, count: int, *, channel: str = "sms", send_at=None, spread: float = 0.0) -> None:
        """`count` messages to +1415 700 0000 + i (SMS) or user<i>@example.com; with `send_at`, message i is due
        `spread` * i / count seconds after it."""
        from datetime import timedelta

        from deliveries.services.bulk import messages_create_many
        from deliveries.services.messages import message_request_validate

        def items():
            for i in range(count):
                due = send_at + timedelta(seconds=spread * i / count) if send_at is not None and spread else send_at
                if channel == "sms":
                    yield message_request_validate(
                        channel="sms", to=f"+1415{7000000 + i}", body=f"Bench {i}", send_at=due
                    )
                else:
                    yield message_request_validate(
                        channel="email", to=f"user{i}@example.com", subject="Bench", body=f"Bench {i}", send_at=due
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

    def send_with_workers(self, count: int, *, timeout: float, workers: int = 2) -> float:
        """Start worker processes, wait until `count` messages are sent or failed, stop them (so their CPU time is
        reaped); returns the seconds from their start."""
        processes = self.workers(workers)
        started = time.monotonic()
        self.wait_until_sent(count, timeout=timeout)
        elapsed = time.monotonic() - started
        for process in processes:
            self.stop(process)
        return elapsed


def rate_from_receipts(receipts: list[dict]) -> float:
    times = sorted(r["received_at"] for r in receipts)
    if len(times) < 2:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of this machine's PostgreSQL so far: its live processes, plus the backends that have exited (which
    the postmaster has reaped: each job's work horse has a connection of its own). 0 if none can be read."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            if (entry / "cmdline").read_text().startswith("/"):  # the postmaster (its children renamed themselves)
                total += int(fields[13]) + int(fields[14])
    return total / tick


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants: RQ's default Worker forks a child (a "work horse") per job, send_bulk
    forks its processes. Read from the kernel's list of each process's children (cheap enough to sample often);
    where the kernel keeps none, from every process's parent in /proc."""
    if not Path(f"/proc/{pid}/task/{pid}/children").exists():
        return _process_tree_by_scan(pid)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            todo.extend(int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split())
    return found


def _process_tree_by_scan(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB; OSError if the process is gone. PSS shares a page's size among the processes that map it,
    so a forked child's pages still shared with its parent are not counted twice when the two are summed."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.Error as error:
            raise ProcessLookupError(pid) from error
        return info.rss // 1024, getattr(info, "pss", info.rss) // 1024
    fields = dict(line.partition(":")[::2] for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    with contextlib.suppress(OSError):
        fields.update(line.partition(":")[::2] for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines())
    rss = int(fields["VmRSS"].split()[0])
    return rss, int(fields.get("Pss", f"{rss} kB").split()[0])


# --- scenarios -----------------------------------------------------------------------------------
def scenario_send(bench: Bench, channel: str, count: int) -> dict:
    bench.reset()
    bench.create_messages(count, channel=channel)
    fake_cpu_before, postgres_cpu_before = cpu_seconds(bench.fake.pid), postgres_cpu_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = bench.send_with_workers(count, timeout=max(120, count / 50))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers (and their work horses) just reaped
    workers_cpu = sum(getattr(children, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    fake_cpu, postgres_cpu = cpu_seconds(bench.fake.pid) - fake_cpu_before, postgres_cpu_seconds() - postgres_cpu_before
    receipts = bench.received(TWILIO_PORT if channel == "sms" else POSTMARK_PORT)
    from deliveries.models import Message, Status

    sent = Message.objects.filter(status=Status.SENT).count()
    return {
        "messages": count,
        "sent": sent,
        "received_by_provider": len(receipts),
        "rate_per_s": round(rate_from_receipts(receipts), 1),
        "wall_seconds_including_worker_start": round(elapsed, 2),
        # CPU per message of each party on the two cores: what the rate is made of (docs/performance.md).
        "workers_cpu_ms_per_message": round(workers_cpu * 1000 / count, 3),
        "postgres_cpu_ms_per_message": round(postgres_cpu * 1000 / count, 3),
        "fake_cpu_ms_per_request": round(fake_cpu * 1000 / max(len(receipts), 1), 3),
    }


def scenario_api_backlog(bench: Bench, count: int) -> dict:
    """Messages queued one job each, as `POST /api/v1/messages/` queues them (message_create, in this process
    rather than over HTTP, so only the sending is measured), then sent by 2 workers: how fast a backlog of API
    messages drains. Each small job takes the send jobs waiting behind it over (deliveries.job_source)."""
    bench.reset()
    import django_rq

    from deliveries.services.messages import message_create, message_request_validate

    for i in range(count):
        request, content = message_request_validate(channel="sms", to=f"+1415{7000000 + i}", body=f"Bench {i}")
        message_create(request=request, content=content)
    jobs_queued = django_rq.get_queue("default").count
    elapsed = bench.send_with_workers(count, timeout=max(120, count / 5))
    from rq.registry import FinishedJobRegistry

    receipts = bench.received(TWILIO_PORT)
    return {
        "messages": count,
        "jobs_queued": jobs_queued,
        "jobs_run": FinishedJobRegistry(queue=django_rq.get_queue("default")).count,
        "received_by_provider": len(receipts),
        "rate_per_s": round(rate_from_receipts(receipts), 1),
        "wall_seconds_including_worker_start": round(elapsed, 2),
    }


BULLMQ_DIR = ROOT / "benchmarks" / "bullmq"
# The peer as issue #6 names it: "a BullMQ worker at concurrency 100". The same again with two worker processes,
# one for each of ours, is measured beside it (`bullmq_two_workers`): a stricter comparison, shown, not a target.
BULLMQ_CONCURRENCY = 100


def bullmq_install() -> str | None:
    """Installs the pinned BullMQ into benchmarks/bullmq/node_modules once; returns why it cannot run, if it cannot."""
    if not shutil.which("node"):
        return "skipped: node not found"
    pins = json.loads((BULLMQ_DIR / "package.json").read_text())["dependencies"]
    installed = [BULLMQ_DIR / "node_modules" / name / "package.json" for name in pins]
    if all(path.exists() and json.loads(path.read_text())["version"] == pins[path.parent.name] for path in installed):
        return None
    if not shutil.which("npm"):
        return "skipped: npm not found"
    command = ["npm", "ci" if (BULLMQ_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
    installed = subprocess.run(command, cwd=BULLMQ_DIR, capture_output=True, text=True, timeout=600)
    if installed.returncode:
        return f"skipped: {' '.join(command)} failed: {installed.stderr.strip()[-300:]}"
    return None


def scenario_bullmq(bench: Bench, count: int, processes: int = 1) -> dict:
    """The peer: `processes` BullMQ workers (node processes, concurrency 100 each) making the same Twilio call as
    our SMS send, to the same fake at the same latency."""
    skipped = bullmq_install()
    if skipped:
        return {"skipped": skipped}
    from django.conf import settings
    from django.urls import reverse

    bench.reset()
    env = {
        **bench.env,
        "BULLMQ_REDIS_URL": BENCH_REDIS,
        "BULLMQ_CONCURRENCY": str(BULLMQ_CONCURRENCY),
        "STATUS_CALLBACK_URL": settings.PUBLIC_BASE_URL + reverse("webhooks:twilio-status"),
    }
    # Queued before any worker starts, as send_sms stores and queues its messages first.
    subprocess.run(["node", "producer.js", str(count)], cwd=BULLMQ_DIR, env=env, check=True, timeout=300)
    fake_cpu_before, children_before = cpu_seconds(bench.fake.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile("w+") as errors:
        # Each worker leaves once the queue is drained; failures go to stderr, one line each.
        workers = [
            subprocess.Popen(["node", "worker.js"], cwd=BULLMQ_DIR, env=env, stdout=subprocess.DEVNULL, stderr=errors)
            for _ in range(processes)
        ]
        bench.processes.extend(workers)
        for worker in workers:
            try:
                worker.wait(timeout=max(120, count / 50))
            finally:
                bench.stop(worker)
        errors.seek(0)
        failures = sum(1 for line in errors if "failed:" in line)
    fake_cpu = cpu_seconds(bench.fake.pid) - fake_cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers are the only children reaped meanwhile
    workers_cpu = sum(getattr(children, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
    receipts = bench.received()
    return {
        "messages": count,
        "received_by_provider": len(receipts),
        "failed_jobs": failures,
        "workers_cpu_ms_per_message": round(workers_cpu * 1000 / max(len(receipts), 1), 3),
        "rate_per_s": round(rate_from_receipts(receipts), 1),
        "workers": f"{processes} node process{'es' if processes > 1 else ''} x concurrency {BULLMQ_CONCURRENCY}",
        "fake_cpu_ms_per_request": round(fake_cpu * 1000 / max(len(receipts), 1), 3),
    }


def scenario_fake_capacity(bench: Bench, count: int, concurrency: int = 400) -> dict:
    """Can the fake Twilio keep up? The SMS call, `concurrency` in flight, from a separate (node) process, no queue:
    requests per second it answers at the run's latency, and its CPU time per request."""
    skipped = bullmq_install()
    if skipped:
        return {"skipped": skipped}
    from django.conf import settings
    from django.urls import reverse

    bench.reset()
    env = {
        **bench.env,
        "BULLMQ_CONCURRENCY": str(concurrency),
        "STATUS_CALLBACK_URL": settings.PUBLIC_BASE_URL + reverse("webhooks:twilio-status"),
    }
    fake_cpu_before = cpu_seconds(bench.fake.pid)
    output = subprocess.run(
        ["node", "direct.js", str(count)], cwd=BULLMQ_DIR, env=env, capture_output=True, text=True, check=True
    ).stdout
    client = json.loads(output.strip().splitlines()[-1])
    fake_cpu = cpu_seconds(bench.fake.pid) - fake_cpu_before
    receipts = bench.received()
    return {
        "requests": count,
        "concurrency": concurrency,
        "failures": client["failures"],
        "answered_per_s": round(rate_from_receipts(receipts), 1),
        "ceiling_at_this_latency_per_s": round(concurrency / bench.args.latency) if bench.args.latency else None,
        "fake_cpu_ms_per_request": round(fake_cpu * 1000 / max(len(receipts), 1), 3),
    }


def scenario_memory(bench: Bench, count: int, latency: float = 0.005) -> dict:
    """One worker over `count` SMS messages: its memory at 10%, 50% and 100% of them."""
    from deliveries.models import Message, Status

    bench.reset()
    bench.configure_fake(latency=latency)
    bench.create_messages(count)
    worker = bench.workers(1)[0]
    checkpoints = [(share, int(count * share)) for share in (0.1, 0.5, 1.0)]
    samples: list[dict] = []
    peak_tree_rss = peak_tree_pss = 0
    deadline = time.monotonic() + max(600, count / 20)
    while checkpoints and time.monotonic() < deadline:
        with contextlib.suppress(OSError, KeyError, ValueError):  # a work horse may exit while we read it
            tree = [memory_kb(member) for member in process_tree(worker.pid)]
            peak_tree_rss = max(peak_tree_rss, sum(rss for rss, _ in tree))
            peak_tree_pss = max(peak_tree_pss, sum(pss for _, pss in tree))
        done = Message.objects.filter(status__in=[Status.SENT, Status.FAILED]).count()
        while checkpoints and done >= checkpoints[0][1]:
            share, _ = checkpoints.pop(0)
            samples.append(
                {
                    "share": share,
                    "messages_done": done,
                    "worker_rss_mb": round(memory_kb(worker.pid)[0] / 1024, 1),
                    # A work horse lives for one job: the peak since the previous checkpoint catches one.
                    "tree_rss_peak_mb": round(peak_tree_rss / 1024, 1),
                    "tree_pss_peak_mb": round(peak_tree_pss / 1024, 1),
                }
            )
            peak_tree_rss = peak_tree_pss = 0
        time.sleep(0.2)
    bench.stop(worker)
    if checkpoints:
        raise SystemExit(f"memory: only {done} of {count} messages finished in time")
    first, last = samples[0], samples[-1]
    # Flat: what the worker holds after 10% of the messages it still holds, within 10 MB or 10%, at 100%.
    judged = ("worker_rss_mb", "tree_rss_peak_mb")
    growth = {key: round(last[key] - first[key], 1) for key in (*judged, "tree_pss_peak_mb")}
    return {
        "messages": count,
        "fake_latency_s": latency,
        "note": f"fake latency lowered to {latency * 1000:.0f} ms to keep the run short; 1 worker process",
        "at": {f"{sample.pop('share'):.0%}": sample for sample in samples},
        "growth_10_to_100_pct_mb": growth,
        "flat": all(growth[key] <= max(10.0, first[key] * 0.1) for key in judged),
        "flat_means": "worker RSS and the peak RSS of worker + work horse grow by <= 10 MB or 10% from 10% to 100%",
    }


def scenario_naive(bench: Bench, count: int) -> dict:
    """One plain django-rq job per message, 2 default (forking) workers."""
    import django_rq
    from rq import Queue

    bench.reset()
    bench.create_messages(count)
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
    """`count` SMS due in one second, 2 workers and a dispatcher: lag from each message's send_at to the fake's
    receipt. Twice: all due at the same instant (the top-level figures, as before), then spread evenly over the
    second (`spread_over_the_second`)."""
    at_once = _schedule_lags(bench, count, spread=0.0)
    spread = _schedule_lags(bench, count, spread=1.0)
    return {"messages_due_in_one_second": count, **at_once, "spread_over_the_second": spread}


def _schedule_lags(bench: Bench, count: int, *, spread: float) -> dict:
    from datetime import timedelta

    from django.utils import timezone

    bench.reset()
    workers = bench.workers(2)
    dispatcher = bench.manage("run_dispatcher")
    due = (timezone.now() + timedelta(seconds=8)).replace(microsecond=0)
    bench.create_messages(count, send_at=due, spread=spread)
    bench.wait_until_sent(count, timeout=120)
    for process in [*workers, dispatcher]:
        bench.stop(process)
    # Message i (to +1415 700 0000 + i) was due spread * i / count seconds after `due`.
    lags = sorted(
        r["received_at"] - due.timestamp() - spread * (int(r["to"][-7:]) - 7000000) / count for r in bench.received()
    )
    return {
        "lag_p50_s": round(statistics.median(lags), 3),
        "lag_p99_s": round(lags[int(len(lags) * 0.99) - 1], 3),
        "lag_max_s": round(lags[-1], 3),
        "sent_early": sum(1 for lag in lags if lag < 0),
    }


def scenario_fanout(bench: Bench, count: int) -> dict:
    """`manage.py send_bulk` of a `count`-row CSV (its default processes, one per CPU): seconds from the command's
    start (after Django's) until it returns, every row stored and queued; peak memory of all its processes
    (PSS, so pages a forked process shares with its parent count once). Beside it, the core every fan-out goes
    through (validated messages stored by messages_create_many, in one process, no template), as measured before
    3 December's second session."""
    bench.reset()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        path.write_text("to,name\n" + "".join(f"+1415{7000000 + i},P{i}\n" for i in range(count)))
        script = (
            "import django, io, sys, time; django.setup();"
            "from django.core.management import call_command;"
            "t = time.monotonic();"
            "call_command('send_bulk', csv=sys.argv[1], channel='sms', body='Bench {{ name }}', no_progress=True,"
            " stdout=io.StringIO());"
            "print(time.monotonic() - t)"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(path)], cwd=ROOT, env=bench.env, stdout=subprocess.PIPE, text=True
        )
        peak_pss_kb = 0
        while process.poll() is None:
            sizes = []
            for pid in process_tree(process.pid):
                with contextlib.suppress(OSError, ProcessLookupError, KeyError):
                    sizes.append(memory_kb(pid)[1])
            peak_pss_kb = max(peak_pss_kb, sum(sizes))
            time.sleep(0.2)
        seconds = float(process.stdout.read().split()[-1])
        if process.returncode:
            raise SystemExit(f"send_bulk failed (exit {process.returncode})")
    import django_rq
    from django.conf import settings

    from deliveries.models import Message

    send_bulk = {
        "recipients": count,
        "processes": settings.BULK_SEND_PROCESSES,
        "seconds_rows_written_and_queued": round(seconds, 2),
        "peak_memory_mb": round(peak_pss_kb / 1024, 1),
        "rows": Message.objects.count(),
        "jobs_queued": django_rq.get_queue("default").count,
    }
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
    return {
        **send_bulk,
        "core_one_process": {
            "seconds_rows_written_and_queued": round(float(output[0]), 2),
            "peak_memory_mb": round(int(output[1]) / 1024, 1),
            "rows": Message.objects.count(),
        },
    }


def scenario_fanout_campaign(bench: Bench, count: int) -> dict:
    """A campaign to a list of `count` contacts: seconds for campaign_fan_out (what the fan-out job runs in a
    worker) to store and queue every message, from its start. The process is prepared as run_worker prepares
    the worker its jobs are forked from (the send path imported, the objects then frozen out of collection)."""
    from django.db import connection

    from campaigns.models import Campaign, Contact, ContactList

    bench.reset()
    Campaign.objects.all().delete()
    audience, _ = ContactList.objects.get_or_create(name="benchmark audience")
    if audience.contacts.count() != count:
        with connection.cursor() as cursor:  # far quicker than the ORM collecting 100,000 contacts to delete
            cursor.execute(f"TRUNCATE {Contact._meta.db_table} CASCADE")
        contacts = Contact.objects.bulk_create(
            (Contact(name=f"P{i}", phone=f"+1415{7000000 + i}", sms_consent=True) for i in range(count)),
            batch_size=5000,
        )
        membership = Contact.lists.through
        membership.objects.bulk_create(
            (membership(contact_id=contact.pk, contactlist_id=audience.pk) for contact in contacts), batch_size=5000
        )
        with connection.cursor() as cursor:  # as autovacuum would have by the time a real list is sent to
            cursor.execute("ANALYZE campaigns_contact; ANALYZE campaigns_contact_lists")
    script = (
        "import django, sys, time; django.setup();"
        "from deliveries.management.commands.run_worker import preload_send_path; preload_send_path();"
        "from campaigns.models import Campaign, ContactList; from content.models import MessageTemplate;"
        "from campaigns.services.campaign_lifecycle import campaign_launch;"
        "from campaigns.services.fan_out import campaign_fan_out;"
        "template, _ = MessageTemplate.objects.get_or_create(slug='benchmark', defaults={'name': 'Benchmark',"
        " 'channel': 'sms', 'body': 'Hi {{ name }}'});"
        "campaign = Campaign.objects.create(name='Benchmark', template=template,"
        " contact_list=ContactList.objects.get(name='benchmark audience'));"
        "campaign_launch(campaign=campaign);"
        "t = time.monotonic(); made = campaign_fan_out(campaign_id=campaign.pk);"
        "print(time.monotonic() - t, made)"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=bench.env, capture_output=True, text=True, check=True
    ).stdout.split()
    from deliveries.models import Message

    return {
        "recipients": count,
        "seconds_rows_written_and_queued": round(float(output[0]), 2),
        "messages": int(output[1]),
        "rows": Message.objects.count(),
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
            # logging_level: RQ's own INFO lines would land in the middle of the benchmark's output.
            django_rq.get_worker("default", worker_class=SimpleWorker).work(burst=True, logging_level="WARNING")
    finally:
        Connection.send_packed_command = original_send
    return {
        "messages": count,
        "sql_per_message": round(statements / count, 2),
        "redis_round_trips_per_message": round(round_trips / count, 3),
        "note": "counted in one in-process SimpleWorker, including RQ's own bookkeeping",
    }


# The issue-#6 API target is judged at this offered rate, in an open loop.
API_OFFERED_RATE = 400


def scenario_api(bench: Bench, seconds: float) -> dict:
    """POST /api/v1/messages/ (and the batch endpoint) against gunicorn, from a separate load-generator process."""
    from deliveries.services.api_keys import api_key_create

    bench.reset()
    _, raw_key = api_key_create(name=f"bench-{time.time_ns()}")
    with contextlib.closing(socket.socket()) as probe:
        # Otherwise the load would go to whatever answers there, and gunicorn would fail to bind unnoticed.
        if probe.connect_ex(("127.0.0.1", WEB_PORT)) == 0:
            raise RuntimeError(f"Something already listens on 127.0.0.1:{WEB_PORT}; BENCH_PORT_BASE moves the ports.")
    web = bench.spawn_web(WEB_PORT)
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
        offered = load("--rate", str(API_OFFERED_RATE))
        batch = load("--concurrency", "4", "--batch", "500")
    finally:
        bench.stop(web)
    return {
        # Closed loop, 16 in flight: the most the server accepts. Its latency is mostly the queue of 16.
        "single_accepted_per_s": single["accepted_messages_per_s"],
        "single_p50_ms": single["latency_p50_ms"],
        "single_p99_ms": single["latency_p99_ms"],
        "single_statuses": single["statuses"],
        # Open loop at the target rate: latency from each request's scheduled start (loadgen.py).
        "offered_per_s": API_OFFERED_RATE,
        "offered_issued": offered["issued"],
        "offered_accepted_per_s": offered["accepted_messages_per_s"],
        "offered_p50_ms": offered["latency_p50_ms"],
        "offered_p99_ms": offered["latency_p99_ms"],
        "offered_max_ms": offered["latency_max_ms"],
        "offered_statuses": offered["statuses"],
        "offered_issue_late_p99_ms": offered["issue_late_p99_ms"],
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
        "api_backlog": 300 if args.quick else 5000,
        "schedule": 500 if args.quick else 5000,
        "fanout": 5000 if args.quick else 100000,
        "cost": 500 if args.quick else 5000,
        "api_seconds": 5 if args.quick else 30,
        "memory": 5000 if args.quick else 200000,
        "fake_capacity": 5000 if args.quick else 20000,
        "many_hosts": 2000 if args.quick else 20000,
        "guard": 1000 if args.quick else 10000,
        "admin_1m": 20000 if args.quick else 1_000_000,
    }
    scenarios = {
        "fanout": lambda b: scenario_fanout(b, sizes["fanout"]),
        "fanout_campaign": lambda b: scenario_fanout_campaign(b, sizes["fanout"]),
        "send_sms": lambda b: scenario_send(b, "sms", sizes["send_sms"]),
        "send_email": lambda b: scenario_send(b, "email", sizes["send_email"]),
        "api_backlog": lambda b: scenario_api_backlog(b, sizes["api_backlog"]),
        "naive": lambda b: scenario_naive(b, sizes["naive"]),
        "bullmq": lambda b: scenario_bullmq(b, sizes["send_sms"]),
        "bullmq_two_workers": lambda b: scenario_bullmq(b, sizes["send_sms"], processes=2),
        "fake_capacity": lambda b: scenario_fake_capacity(b, sizes["fake_capacity"]),
        "noop": lambda b: scenario_noop(b, sizes["noop"]),
        "schedule": lambda b: scenario_schedule(b, sizes["schedule"]),
        "cost": lambda b: scenario_cost(b, sizes["cost"]),
        "api": lambda b: scenario_api(b, sizes["api_seconds"]),
        "memory": lambda b: scenario_memory(b, sizes["memory"]),
        "many_hosts": lambda b: scenario_many_hosts(b, sizes["many_hosts"]),
        "guard": lambda b: scenario_guard(b, sizes["guard"]),
        # Last: the others do not need its million rows, which live in a database of its own.
        "admin_1m": lambda b: scenario_admin_1m(b, sizes["admin_1m"], WEB_PORT),
    }
    wanted = [name for name in (args.only.split(",") if args.only else scenarios) if name]
    unknown = [name for name in wanted if name not in scenarios]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; the scenarios are {', '.join(scenarios)}")
    bench = Bench(args)
    results: dict[str, dict] = {}
    try:
        bench.setup()
        for name in wanted:
            print(f"… {name}", file=sys.stderr, end="", flush=True)
            started = time.monotonic()
            results[name] = scenarios[name](bench)
            print(f" ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    finally:
        bench.stop_all()
    report(results, args)


def report(results: dict[str, dict], args) -> None:
    sms, naive, noop = results.get("send_sms", {}), results.get("naive", {}), results.get("noop", {})
    peer, two_peers = results.get("bullmq", {}), results.get("bullmq_two_workers", {})
    if sms.get("rate_per_s") and naive.get("rate_per_s"):
        sms["ratio_to_naive_django_rq"] = round(sms["rate_per_s"] / naive["rate_per_s"], 1)
    if sms.get("rate_per_s") and noop.get("rate_per_s"):
        sms["ratio_to_noop_rq_jobs"] = round(sms["rate_per_s"] / noop["rate_per_s"], 1)
    if sms.get("rate_per_s") and peer.get("rate_per_s"):
        sms["ratio_to_bullmq_peer"] = round(sms["rate_per_s"] / peer["rate_per_s"], 3)
    if sms.get("rate_per_s") and two_peers.get("rate_per_s"):
        sms["ratio_to_bullmq_two_workers"] = round(sms["rate_per_s"] / two_peers["rate_per_s"], 3)
    summary = summarize(results)
    now = datetime.now(UTC)
    print(f"\nTidings benchmarks — {now:%Y-%m-%d %H:%M} UTC, fake provider latency {args.latency * 1000:.0f} ms")
    print(f"{'scenario':<18} {'figure':<44} value")
    for name, figures in results.items():
        for key, value in flatten(figures):
            print(f"{name:<18} {key:<44} {value}")
    if "admin_1m" in results:
        print_admin_table(results["admin_1m"])
    print_summary(summary, args)
    record = {
        "date": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "latency_s": args.latency,
        "quick": args.quick,
        "results": results,
        "summary": summary,
        "benchmark_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    # Only a full run of every scenario takes the date's name (the one committed); a quick or partial run must not
    # overwrite it.
    suffix = "-quick" if args.quick else "-partial" if args.only else ""
    out = ROOT / "benchmarks" / "results" / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nWritten to {out.relative_to(ROOT)}")


def flatten(figures: dict, prefix: str = ""):
    """Nested figures as `outer.inner` rows, one value each (HTTP status counts stay on one row)."""
    for key, value in figures.items():
        if isinstance(value, dict) and not key.endswith("_statuses"):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def summarize(results: dict[str, dict]) -> list[dict]:
    """Each target of issue #6, what this run measured, and whether that meets it (None: not measured); rows marked
    `shown_only` are comparisons printed beside them, not targets."""
    rows: list[dict] = []

    def figure(scenario: str, *keys: str):
        value = results.get(scenario, {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def add(target: str, figures: list, describe, meets, missing: str | None = None, shown_only=False, says=None):
        if any(value is None for value in figures):
            row = {"target": target, "measured": missing or "not run", "met": None}
        else:
            row = {"target": target, "measured": describe(*figures), "met": bool(meets(*figures))}
        if shown_only:
            row["shown_only"] = True  # a comparison printed with the targets, not one of them
            row["says"] = says or ["ahead", "behind"]  # printed for met / not met
        rows.append(row)

    add("SMS >= 2,000/s, 2 workers", [figure("send_sms", "rate_per_s")], "{:,.0f}/s".format, lambda r: r >= 2000)
    # The ratios are rounded for printing; each target is judged on the rates themselves (2,856 against a peer's
    # 2,860 is a miss, though it prints as 1.0x at two decimals).
    add(
        "SMS >= 40x naive django-rq",
        [
            figure("send_sms", "ratio_to_naive_django_rq"),
            figure("send_sms", "rate_per_s"),
            figure("naive", "rate_per_s"),
        ],
        lambda ratio, ours, naive: f"{ratio}x",
        lambda ratio, ours, naive: ours >= 40 * naive,
    )
    add(
        "SMS >= BullMQ peer",
        [figure("send_sms", "ratio_to_bullmq_peer"), figure("send_sms", "rate_per_s"), figure("bullmq", "rate_per_s")],
        lambda ratio, ours, peer: f"{ratio}x ({ours:,.0f}/s, peer {peer:,.0f}/s)",
        lambda ratio, ours, peer: ours >= peer,
        missing=figure("bullmq", "skipped") or "needs send_sms and bullmq",
    )
    # Not a target of the issue: the peer with a worker process for each of ours, shown beside it.
    add(
        "(shown) SMS vs 2 BullMQ workers",
        [
            figure("send_sms", "ratio_to_bullmq_two_workers"),
            figure("send_sms", "rate_per_s"),
            figure("bullmq_two_workers", "rate_per_s"),
        ],
        lambda ratio, ours, peers: f"{ratio}x ({ours:,.0f}/s, 2 x 100 {peers:,.0f}/s)",
        lambda ratio, ours, peers: ours >= peers,
        missing=figure("bullmq_two_workers", "skipped") or "needs send_sms and bullmq_two_workers",
        shown_only=True,
    )
    add("email >= 1,000/s", [figure("send_email", "rate_per_s")], "{:,.0f}/s".format, lambda r: r >= 1000)
    # Judged on send_bulk, one of the two the issue names; the campaign and the shared core are shown beside it.
    add(
        "fan-out 100k <= 5 s, <= 300 MB",
        [figure("fanout", key) for key in ("seconds_rows_written_and_queued", "peak_memory_mb", "recipients")],
        lambda seconds, mb, count: f"send_bulk {seconds} s, {mb} MB for {count:,}",
        lambda seconds, mb, count: seconds <= 5 and mb <= 300,
    )
    for target, where, note in (
        ("(shown) fan-out 100k, a campaign", ("fanout_campaign",), ""),
        (
            "(shown) fan-out 100k, core, 1 process",
            ("fanout", "core_one_process"),
            " (no template, as judged until Dec 3)",
        ),
    ):
        add(
            target,
            [figure(*where, "seconds_rows_written_and_queued")],
            lambda seconds, note=note: f"{seconds} s{note}",
            lambda seconds: seconds <= 5,
            shown_only=True,
            says=["within 5 s", "over 5 s"],
        )
    # Judged with the 5,000 send_at spread over the second ("due in the same second"); all at one instant, p99
    # cannot be under 1.2 s with 2 x SEND_CONCURRENCY = 200 calls of 50 ms (docs/performance.md), so it is shown.
    add(
        "schedule lag p99 <= 1 s",
        [figure("schedule", "spread_over_the_second", "lag_p99_s"), figure("schedule", "lag_p99_s")],
        lambda spread, at_once: f"{spread} s over the second ({at_once} s if all due at one instant)",
        lambda spread, at_once: spread <= 1,
    )
    add(
        "API >= 400/s, p99 <= 50 ms",
        [figure("api", key) for key in ("offered_accepted_per_s", "offered_p99_ms", "single_accepted_per_s")],
        lambda rate, p99, most: f"{rate:,.0f}/s of {API_OFFERED_RATE} offered, p99 {p99} ms (max {most:,.0f}/s)",
        lambda rate, p99, most: api_offered_all_accepted(results["api"]) and p99 <= 50,
    )
    add("batch API >= 20,000 msg/s", [figure("api", "batch_messages_per_s")], "{:,.0f}/s".format, lambda r: r >= 20000)
    add(
        "<= 2 SQL, <= 1 Redis trip / message",
        [figure("cost", "sql_per_message"), figure("cost", "redis_round_trips_per_message")],
        lambda sql, trips: f"{sql} SQL, {trips} Redis",
        lambda sql, trips: sql <= 2 and trips <= 1,
    )
    add(
        "worker memory flat over 200k",
        [figure("memory", "growth_10_to_100_pct_mb"), figure("memory", "messages"), figure("memory", "flat")],
        lambda growth, count, flat: (
            f"+{growth['worker_rss_mb']} MB worker, +{growth['tree_rss_peak_mb']} MB with work horse ({count:,})"
        ),
        lambda growth, count, flat: flat,
    )
    # Issue #23: workers on several hosts; rates shown, judged nowhere (the exactly-once promise is the test's).
    add(
        "(shown) SMS on 1 / 2 / 4 worker hosts",
        [figure("many_hosts", "phases", f"{hosts}_hosts", "rate_per_s") for hosts in (1, 2, 4)]
        + [figure("many_hosts", "hosts_are")],
        lambda one, two, four, mode: f"{one:,.0f} / {two:,.0f} / {four:,.0f} per s ({mode.split(' (')[0]})",
        lambda *figures: True,
        shown_only=True,
        says=["measured", "measured"],
    )
    # Issue #24: the cost guard, every control on, against the same run with it idle (the default), same run.
    add(
        "guard on: SMS rate within 5 % of off",
        [figure("guard", key) for key in ("rate_change_pct", "rate_per_s_on", "rate_per_s_off")]
        + [figure("guard", "guard_store_us_per_message")],
        lambda change, on, off, store: f"{change:+.1f} % ({on:,.0f}/s on, {off:,.0f}/s off; +{store} µs to store)",
        lambda change, on, off, store: change >= -5,
    )
    # Issue #22: every admin page under 1 s with a million messages (and each answered 200).
    add(
        "admin pages < 1 s at 1M messages",
        [figure("admin_1m", key) for key in ("slowest_max_s", "slowest_page", "messages", "all_under_1s")],
        lambda slowest, page, count, ok: f"slowest {page}: {slowest} s max ({count:,} messages)",
        lambda slowest, page, count, ok: ok,
    )
    return rows


def api_offered_all_accepted(api: dict) -> bool:
    """The open-loop run issued every request its schedule held, and each was answered 201."""
    expected = round(api["offered_per_s"] * api["seconds_each"])
    return api["offered_issued"] == expected and api["offered_statuses"] == {"201": expected}


def print_summary(summary: list[dict], args) -> None:
    print("\nTargets of issue #6" + (" (quick run: smaller sizes than the targets name)" if args.quick else ""))
    if args.latency != 0.05:
        print(f"(the targets assume a 50 ms fake provider; this run used {args.latency * 1000:.0f} ms)")
    labels = {True: "met", False: "NOT MET", None: "-"}
    for row in summary:
        label = labels[row["met"]] if not row.get("shown_only") or row["met"] is None else row["says"][not row["met"]]
        print(f"  {row['target']:<38} {row['measured']:<54} {label}")


if __name__ == "__main__":
    main()
