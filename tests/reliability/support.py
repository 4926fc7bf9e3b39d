"""Helpers for the fault-injection scenarios: many messages at once, processes to start, kill and count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone

from deliveries.models import Message, MessageEvent, Status
from deliveries.services.dispatch import batches, enqueue_jobs, new_job_id
from deliveries.services.messages import message_review_mark_sent, message_review_resend
from deliveries.state import PENDING_STATUSES
from fake_providers.twilio import FakeTwilio
from tests.support import ROOT, process_env, provider_env, wait_for

# Small numbers everywhere so that a scenario's retries, leases and pauses play out in seconds.
FAST_SETTINGS = {
    "SEND_BATCH_SIZE": "20",
    "SEND_CONCURRENCY": "8",
    "SEND_RETRY_BACKOFF": "0.2",
    "SEND_RETRY_BACKOFF_MAX": "1",
    "SEND_LEASE_SECONDS": "3",
    "RECONCILE_AFTER": "3",
    "DISPATCH_INTERVAL": "0.1",
    "BREAKER_FAIL_MAX": "10",
    "BREAKER_RESET_TIMEOUT": "2",
    "TWILIO_TIMEOUT": "2",
    "LOG_LEVEL": "WARNING",
}


def queue_sms(count: int, *, batch_size: int = 20, recipients: list[str] | None = None) -> list[int]:
    """`count` queued SMS with their jobs on the queue, as message_create leaves them but in bulk."""
    recipients = recipients or [f"+1415{5000000 + i:07d}" for i in range(count)]
    now = timezone.now()
    rows = [
        Message(channel="sms", recipient=to, body=f"Message {i} to {to}", status=Status.QUEUED, queued_at=now)
        for i, to in enumerate(recipients)
    ]
    created = Message.objects.bulk_create(rows)
    ids = [m.pk for m in created]
    MessageEvent.objects.bulk_create(
        MessageEvent(message_id=pk, to_status=Status.QUEUED, detail="Created by the test.", created_at=now)
        for pk in ids
    )
    jobs = []
    for chunk in batches(ids, batch_size):
        job_id = new_job_id()
        Message.objects.filter(pk__in=chunk).update(job_id=job_id)
        jobs.append((job_id, chunk))
    assert enqueue_jobs({"default": jobs}) == len(jobs)
    return ids


def statuses(ids: list[int]) -> Counter:
    return Counter(Message.objects.filter(pk__in=ids).values_list("status", flat=True))


def wait_until_settled(ids: list[int], *, timeout: float) -> Counter:
    """Wait until none of the messages is scheduled, queued or sending; return the count by status."""

    def settled():
        counts = statuses(ids)
        return counts if not any(counts[s] for s in PENDING_STATUSES) else None

    return wait_for(settled, timeout=timeout, interval=0.25, message=f"{len(ids)} messages to settle")


def children_of(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Pipeline:
    """Worker and dispatcher processes of one scenario, each in its own process group with its own log file."""

    def __init__(self, fake_twilio: FakeTwilio, *, log_dir: Path):
        self.fake_twilio = fake_twilio
        self.log_dir = log_dir
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def env(self, **overrides: str) -> dict[str, str]:
        return process_env(**provider_env(self.fake_twilio), **{**FAST_SETTINGS, **overrides})

    def start(self, *args: str, **overrides: str) -> subprocess.Popen:
        log = self.log_dir / f"{args[0]}-{uuid.uuid4().hex[:6]}.log"
        with open(log, "w") as out:
            # A file, not a pipe: a pipe nobody reads fills up and freezes a busy worker.
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), *args],
                cwd=ROOT,
                env=self.env(**overrides),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((process, log))
        return process

    def start_worker(self, **overrides: str) -> subprocess.Popen:
        return self.start("run_worker", **overrides)

    def start_dispatcher(self, **overrides: str) -> subprocess.Popen:
        return self.start("run_dispatcher", **overrides)

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL a worker and its work horse (RQ puts the horse in a process group of its own), as when the
        machine under them dies. The worker is frozen first so that it cannot fork a new horse meanwhile."""
        os.kill(process.pid, signal.SIGSTOP)
        for child in children_of(process.pid):
            os.kill(child, signal.SIGKILL)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process, _ in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def output(self) -> str:
        return "".join(log.read_text() for _, log in self.processes if log.exists())

    def assert_no_tracebacks(self) -> None:
        output = self.output()
        assert "Traceback" not in output, output[-5000:]


def settle_reviews_as_an_operator(ids: list[int], *, reached_provider: Callable[[Message], bool]) -> tuple[int, int]:
    """What docs/operations.md tells a person to do with `review` messages: look each one up at the provider, then
    mark it sent if it is there or send it again if it is not. (RESEND_AMBIGUOUS_CHANNELS would send them all
    again, unlooked: those the provider had would then go twice.) Returns (found at the provider, sent again)."""
    found = resent = 0
    for message in Message.objects.filter(pk__in=ids, status=Status.REVIEW):
        if reached_provider(message):
            assert message_review_mark_sent(message=message, by="test operator")
            found += 1
        else:
            assert message_review_resend(message=message, by="test operator")
            resent += 1
    return found, resent
