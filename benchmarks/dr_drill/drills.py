"""The drills. Each stores a fresh set of messages, lets the workers send part of them, breaks one thing, waits
until nothing is left to send, and judges the outcome from the database against the provider's receipts
(verdict.py). Messages a worker left in doubt (`review`) are then settled as docs/operations.md tells a person
to (marked sent when the provider has them, sent again when it does not) before the final count.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pipeline import (
    Pipeline,
    create_messages,
    django_setup,
    message_rows,
    reset_database_and_queues,
    retrying,
    status_counts,
)
from .servers import DrillError, PrivatePostgres, PrivateRedis, wait_until
from .verdict import RecoveryTimes, Verdict, judge, recovery_times

DATABASE = "tidings_drill"
RESTORED_DATABASE = "tidings_drill_restored"
# Statuses the workers or the dispatcher will still move on by themselves.
PENDING = {"scheduled", "queued", "sending", "paused"}
# The settings that decide the recovery times, printed with every run.
SETTINGS_SHOWN = (
    "RECONCILE_AFTER",
    "SEND_LEASE_SECONDS",
    "BREAKER_FAIL_MAX",
    "BREAKER_RESET_TIMEOUT",
    "SEND_RETRY_BACKOFF",
    "SEND_MAX_ATTEMPTS",
    "SEND_BATCH_SIZE",
    "SEND_CONCURRENCY",
)


@dataclass(frozen=True)
class Mode:
    """How big a run is, and the settings its processes run with (none but the defaults in the full mode)."""

    name: str
    messages: int
    fault_after: float  # share of the messages sent when the fault comes
    latency: float  # seconds the fake Twilio takes to answer
    provider_down_s: float
    settle_timeout: float
    settings: dict[str, str] = field(default_factory=dict)


FULL = Mode("full", messages=5000, fault_after=0.3, latency=0.05, provider_down_s=60, settle_timeout=600)
# Timers shortened so that the whole run takes well under a minute; the figures then say little about production.
QUICK = Mode(
    "quick",
    messages=200,
    fault_after=0.3,
    latency=0.05,
    provider_down_s=2,
    settle_timeout=45,
    settings={
        "SEND_BATCH_SIZE": "10",
        "SEND_CONCURRENCY": "4",
        "SEND_RETRY_BACKOFF": "0.2",
        "SEND_RETRY_BACKOFF_MAX": "1",
        "SEND_LEASE_SECONDS": "2",
        "RECONCILE_AFTER": "2",
        "DISPATCH_LOOKAHEAD": "0.5",
        "DISPATCH_INTERVAL": "0.1",
        "BREAKER_RESET_TIMEOUT": "1",
        "TWILIO_TIMEOUT": "1",
    },
)


@dataclass
class DrillResult:
    name: str
    fault: str
    verdict: Verdict
    times: RecoveryTimes | None
    review: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)  # drill-specific yes/no findings that must hold
    findings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict.ok and all(self.checks.values())


class DrillRun:
    """The private servers, the pipeline and this process's Django, for a run of several drills."""

    def __init__(self, mode: Mode, *, workers: int = 2, keep: bool = False, progress=print):
        self.mode = mode
        self.workers = workers
        self.keep = keep
        self.progress = progress
        self.directory = Path(tempfile.mkdtemp(prefix="tidings-drill-"))
        self.directory.chmod(0o755)  # the postgres OS user reaches its data directory through it
        try:
            self.postgres = PrivatePostgres(self.directory / "postgres")
            self.redis = PrivateRedis(self.directory / "redis")
        except DrillError:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self.pipeline = Pipeline(
            self.directory,
            database_url=self.postgres.url(DATABASE),
            redis_url=self.redis.url,
            settings=mode.settings,
        )
        self.round = 0
        self.settings: dict[str, Any] = {}

    def __enter__(self) -> DrillRun:
        try:
            self.progress(
                f"Starting a PostgreSQL {self.postgres.version} cluster and a Redis of its own in {self.directory}"
            )
            self.postgres.init()
            self.postgres.start()
            self.postgres.create_database(DATABASE)
            self.redis.start()
            self.progress("Migrating its database; starting the fake Twilio, workers and a dispatcher")
            # The workers start while the database is migrated (they touch it only for jobs); the dispatcher, which
            # reads it from its first pass, once that is done.
            self.pipeline.start_fake(self.mode.latency)
            self.pipeline.start_workers(self.workers)
            django_setup(self.pipeline.env())
            self.pipeline.start_dispatcher()
            self.pipeline.wait_for_fake()
            from django.conf import settings

            self.settings = {name: getattr(settings, name) for name in SETTINGS_SHOWN}
        except BaseException as error:
            self.__exit__(type(error))
            raise
        return self

    def __exit__(self, exc_type=None, *exc_info) -> None:
        from django.db import connection

        connection.close()
        self.pipeline.stop_all()
        self.redis.stop()
        self.postgres.stop()
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            self.keep = True
            self.progress(f"Logs kept in {self.directory}")
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- the steps every drill takes ------------------------------------------------------------
    def begin(self) -> list[str]:
        """Empty tables, Redis and the fake; start again what a previous drill left dead; store the messages (the
        workers start on them at once). Returns what had to be restarted."""
        self.round += 1
        restarted = self.pipeline.restart_exited()
        retrying(lambda: reset_database_and_queues(self.redis.url))
        self.pipeline.fake_reset()
        create_messages(self.mode.messages, prefix=self.round)
        return restarted

    def wait_until_sent(self, share: float, *, also=lambda counts: True) -> None:
        target = int(self.mode.messages * share)

        def enough() -> bool:
            counts = status_counts()
            return counts["sent"] >= target and also(counts)

        if not wait_until(enough, timeout=self.mode.settle_timeout, interval=0.02):
            raise DrillError(
                f"only {status_counts()['sent']} of the {target} messages the fault waits for were sent within "
                f"{self.mode.settle_timeout} s; the workers' logs say why"
            )

    def wait_until_settled(self) -> float:
        """Wait until no message is left to send; returns when (epoch seconds), or the time it gave up."""
        wait_until(lambda: not PENDING & set(+status_counts()), timeout=self.mode.settle_timeout, interval=0.1)
        return time.time()

    def settle_reviews(self) -> dict[str, int]:
        """What a person does with messages in `review`: look each up at the provider, mark it sent if it is
        there, send it again if not; then wait for those sent again."""
        from deliveries.models import Message
        from deliveries.services.messages import message_review_mark_sent, message_review_resend

        received = {to for to, _ in self.pipeline.receipts()}
        review = list(Message.objects.filter(status="review"))
        marked = sum(message_review_mark_sent(message=m, by="drill") for m in review if m.recipient in received)
        resent = sum(message_review_resend(message=m, by="drill") for m in review if m.recipient not in received)
        if resent:
            self.wait_until_settled()
        return {"in_review": len(review), "at_provider_marked_sent": marked, "not_at_provider_sent_again": resent}

    def finish(self, name: str, fault: str, *, fault_at: float, back_at: float, restarted: list[str]) -> DrillResult:
        settled_at = self.wait_until_settled()
        receipts = self.pipeline.receipts()
        times = recovery_times([at for _, at in receipts], fault_at=fault_at, back_at=back_at, settled_at=settled_at)
        review = self.settle_reviews()
        verdict = judge(message_rows(), self.pipeline.receipts())
        result = DrillResult(name, fault, verdict, times, review=review, findings=[*restarted])
        result.findings += [f"after the drill: {line}" for line in self.pipeline.restart_exited()]
        if PENDING & set(verdict.statuses):
            result.findings.append(f"not settled within {self.mode.settle_timeout} s: {verdict.statuses}")
        return result


# --- the drills ------------------------------------------------------------------------------------
def redis_lost(run: DrillRun) -> DrillResult:
    """Redis SIGKILLed mid-run and a fresh, empty redis-server started on the same port: every queued job,
    worker registration, breaker and rate window is gone. The reconciler rebuilds the jobs from the database."""
    restarted = run.begin()
    run.wait_until_sent(run.mode.fault_after)
    fault_at = time.time()
    run.redis.kill()
    run.redis.start()
    back_at = time.time()
    return run.finish(
        "redis-lost", "SIGKILL Redis, start an empty one", fault_at=fault_at, back_at=back_at, restarted=restarted
    )


def postgres_restart(run: DrillRun, mode: str) -> DrillResult:
    """PostgreSQL restarted mid-run: `fast` closes every connection and checkpoints; `immediate` kills the server
    as a crash would, and it replays its WAL when it starts. Either way no committed write is lost."""
    restarted = run.begin()
    run.wait_until_sent(run.mode.fault_after)
    fault_at = time.time()
    run.postgres.restart(mode)
    back_at = time.time()
    return run.finish(
        f"postgres-{mode}", f"pg_ctl restart -m {mode}", fault_at=fault_at, back_at=back_at, restarted=restarted
    )


def provider_down(run: DrillRun) -> DrillResult:
    """The fake Twilio answers 503 to every call for a while, then takes messages again. The breaker pauses the
    provider after BREAKER_FAIL_MAX failures, so the backlog waits without spending attempts."""
    restarted = run.begin()
    run.wait_until_sent(run.mode.fault_after)
    fault_at = time.time()
    run.pipeline.fake_configure(down=True)
    time.sleep(run.mode.provider_down_s)
    run.pipeline.fake_configure(down=False)
    back_at = time.time()
    down = f"provider answers 503 for {run.mode.provider_down_s:g} s"
    result = run.finish("provider-down", down, fault_at=fault_at, back_at=back_at, restarted=restarted)
    attempts = Counter(attempts for _, _, _, attempts in message_rows())
    result.figures = {
        "drained_after_back_s": round(result.times.drain_s - result.times.outage_s, 2) if result.times else None,
        "messages_by_attempts": dict(sorted(attempts.items())),
    }
    return result


def worker_killed(run: DrillRun) -> DrillResult:
    """A worker and its work horse SIGKILLed during their provider calls, as when the machine under them dies;
    the other worker carries on. The killed job's messages not yet claimed are re-queued by the reconciler; those
    in flight wait out their lease (SEND_LEASE_SECONDS), then go to review."""
    restarted = run.begin()
    run.wait_until_sent(run.mode.fault_after, also=lambda counts: counts["sending"] > 0)
    fault_at = time.time()
    pid = run.pipeline.kill_worker()
    result = run.finish(
        "worker-killed", "SIGKILL one of the workers", fault_at=fault_at, back_at=fault_at, restarted=restarted
    )
    # The machine's process supervisor would start it again: the next drill needs it.
    result.findings = [line for line in result.findings if f"worker {pid} " not in line]
    return result


def dump_and_restore(run: DrillRun) -> DrillResult:
    """pg_dump while the workers send, from a snapshot whose counts are read in the same transaction; restored
    into a scratch database, whose counts must be the same. The messages still to send at the dump moment and
    sent since are what restoring this dump would put back in the queue: the RPO of a dump is its age."""
    import psycopg

    restarted = run.begin()
    run.wait_until_sent(run.mode.fault_after)
    dump_file = run.directory / "drill.dump"
    fault_at = time.time()
    with psycopg.connect(run.postgres.url(DATABASE)) as snapshot_holder:
        snapshot_holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        snapshot = snapshot_holder.execute("SELECT pg_export_snapshot()").fetchone()[0]
        at_dump = database_counts(snapshot_holder)
        pending_at_dump = [
            pk
            for (pk,) in snapshot_holder.execute(
                "SELECT id FROM deliveries_message WHERE status = ANY(%s)", [sorted(PENDING)]
            )
        ]
        started = time.monotonic()
        run.postgres.client_tool("pg_dump", "--snapshot", snapshot, "-Fc", "-f", str(dump_file), DATABASE)
        dump_s = time.monotonic() - started
    run.postgres.create_database(RESTORED_DATABASE)
    started = time.monotonic()
    run.postgres.client_tool("pg_restore", "--no-owner", "-d", RESTORED_DATABASE, str(dump_file))
    restore_s = time.monotonic() - started
    with psycopg.connect(run.postgres.url(RESTORED_DATABASE)) as restored:
        after_restore = database_counts(restored)
        # The schema came back whole: every migration the live database has is recorded as applied.
        migrations_restored = restored.execute("SELECT app, name FROM django_migrations").fetchall()
    with psycopg.connect(run.postgres.url(DATABASE)) as live:
        migrations_live = live.execute("SELECT app, name FROM django_migrations").fetchall()
    result = run.finish(
        "dump-restore", "pg_dump while sending, pg_restore", fault_at=fault_at, back_at=fault_at, restarted=restarted
    )
    result.times = None  # nothing stopped
    from deliveries.models import Message

    sent_since = Message.objects.filter(pk__in=pending_at_dump, status__in=["sent", "delivered"]).count()
    result.figures = {
        "dump_s": round(dump_s, 2),
        "restore_s": round(restore_s, 2),
        "dump_bytes": dump_file.stat().st_size,
        "messages_in_dump": sum(at_dump["messages_by_status"].values()),
        "events_in_dump": at_dump["events"],
        "at_dump": at_dump,
        "after_restore": after_restore,
        "pending_at_dump_sent_since": sent_since,
    }
    result.checks = {
        "restored_counts_match_the_dump_moment": at_dump == after_restore,
        "restored_database_has_every_migration": sorted(migrations_restored) == sorted(migrations_live),
    }
    return result


def database_counts(connection) -> dict[str, Any]:
    """Messages by status and events, as one psycopg connection sees them."""
    by_status = connection.execute("SELECT status, count(*) FROM deliveries_message GROUP BY status").fetchall()
    events = connection.execute("SELECT count(*) FROM deliveries_messageevent").fetchone()[0]
    return {"messages_by_status": dict(sorted(by_status)), "events": events}


DRILLS = {
    "redis-lost": redis_lost,
    "postgres-fast": lambda run: postgres_restart(run, "fast"),
    "postgres-immediate": lambda run: postgres_restart(run, "immediate"),
    "dump-restore": dump_and_restore,
    "provider-down": provider_down,
    "worker-killed": worker_killed,
}
