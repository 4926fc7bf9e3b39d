"""The Tidings processes a drill runs (the fake Twilio, workers, a dispatcher) and the drill's own view of the
database, all pointed at the drill's private PostgreSQL and Redis.

Processes start with production's settings module defaults (messaging_project.settings.base), overridden only by
what the drill's mode says (the quick mode shortens the timers so that a run takes seconds). Each writes its log to
a file in the drill's directory: a pipe nobody reads fills up and freezes a busy worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .servers import DrillError, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SID, AUTH_TOKEN = "ACfake" + "0" * 28, "fake-auth-token"  # noqa: S105 - the fake's own credentials
T = TypeVar("T")


class Pipeline:
    """Owns the processes of a drill run; `stop_all()` ends every one of them."""

    def __init__(self, directory: Path, *, database_url: str, redis_url: str, settings: dict[str, str]):
        self.directory = directory
        self.database_url = database_url
        self.redis_url = redis_url
        self.settings = settings
        self.fake: subprocess.Popen | None = None
        self.fake_url = ""
        self.workers: list[subprocess.Popen] = []
        self.dispatcher: subprocess.Popen | None = None
        self.started: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "messaging_project.settings.base",
            "DEBUG": "0",
            "SECRET_KEY": "drill-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            # Status callbacks would go here: nowhere (the fake posts to this machine only), and none is asked for.
            "PUBLIC_BASE_URL": "https://drill.invalid",
            "LOG_LEVEL": "WARNING",
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": self.fake_url,
            "PYTHONUNBUFFERED": "1",
            **self.settings,
        }

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = self.directory / f"{name}-{len(self.started)}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        process.log = log  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    # --- the fake Twilio -------------------------------------------------------------------------
    def start_fake(self, latency: float) -> None:
        """Start the fake providers on free ports; the workers may start at once (they know its address), and
        `wait_for_fake()` says when it answers."""
        port = free_port()  # chosen here, so that nothing waits for the fake to say which it took
        self.fake_url = f"http://127.0.0.1:{port}"
        ports = ["--twilio-port", str(port), "--postmark-port", "0", "--messenger-port", "0"]
        self.fake = self._spawn(
            "fake", [sys.executable, "-m", "fake_providers", *ports, "--latency", str(latency), "--callback-delay", "0"]
        )

    def wait_for_fake(self) -> None:
        import requests

        def answers() -> bool:
            try:
                return requests.get(f"{self.fake_url}/_fake/config", timeout=1).ok
            except requests.RequestException:
                return self.fake is None or self.fake.poll() is not None

        if not wait_until(answers, timeout=60) or self.fake is None or self.fake.poll() is not None:
            raise DrillError(f"The fake providers did not start; see {self.fake.log if self.fake else 'its log'}")
        self.fake_reset()

    def _fake(self, method: str, path: str, **json: object) -> dict:
        import requests

        response = requests.request(method, f"{self.fake_url}/_fake/{path}", json=json or None, timeout=60)
        response.raise_for_status()
        return response.json()

    def fake_reset(self) -> None:
        """Forget what it received; no status callbacks (no web process listens for them here)."""
        self._fake("POST", "reset")
        self._fake("POST", "config", outcome="none")

    def fake_configure(self, **changes: object) -> None:
        self._fake("POST", "config", **changes)

    def receipts(self) -> list[tuple[str, float]]:
        """(recipient, epoch seconds it arrived) of every message the fake accepted."""
        return [(message["to"], message["received_at"]) for message in self._fake("GET", "messages")["messages"]]

    # --- workers and the dispatcher --------------------------------------------------------------
    def manage(self, name: str, *args: str) -> subprocess.Popen:
        return self._spawn(name, [sys.executable, "manage.py", *args])

    def start_workers(self, count: int) -> None:
        self.workers = [self.manage("worker", "run_worker") for _ in range(count)]

    def start_dispatcher(self) -> None:
        self.dispatcher = self.manage("dispatcher", "run_dispatcher")

    def restart_exited(self) -> list[str]:
        """Start again any worker or dispatcher that exited; returns what had (a drill's finding)."""
        exited = []
        for index, worker in enumerate(self.workers):
            if worker.poll() is not None:
                exited.append(f"worker {worker.pid} exited with {worker.returncode}")
                self.workers[index] = self.manage("worker", "run_worker")
        if self.dispatcher is not None and self.dispatcher.poll() is not None:
            exited.append(f"dispatcher {self.dispatcher.pid} exited with {self.dispatcher.returncode}")
            self.dispatcher = self.manage("dispatcher", "run_dispatcher")
        return exited

    def kill_worker(self) -> int:
        """SIGKILL a busy worker (one with a work horse running a job) and its horse, as when its machine dies.
        It is frozen first so that it cannot fork a new horse meanwhile (RQ puts each horse in a process group of
        its own). Returns its pid."""
        busy = [worker for worker in self.workers if _children(worker.pid)]
        victim = (busy or self.workers)[0]
        os.kill(victim.pid, signal.SIGSTOP)
        for child in _children(victim.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        return victim.pid

    def stop_all(self) -> None:
        """SIGTERM every process, and SIGKILL what is still there after a few seconds: what they were doing is
        thrown away with the drill's servers."""
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 5
        for process in self.started:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


# --- the drill's own Django, on the private database -----------------------------------------------
def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process as the pipeline's processes are, and bring the schema up to date."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


def retrying(read: Callable[[], T], *, timeout: float = 60) -> T:
    """A read that outlives a PostgreSQL restart: on a database error, drop the connection and try again."""
    from django.db import DatabaseError, connection

    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except DatabaseError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def reset_database_and_queues(redis_url: str) -> None:
    """Empty the message tables and Redis between drills (Redis holds nothing the database cannot rebuild)."""
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE deliveries_message, deliveries_messageevent, campaigns_batch CASCADE")
    redis.Redis.from_url(redis_url).flushall()


def create_messages(count: int, *, prefix: int) -> None:
    """`count` (up to a million) SMS, each to a number of its own (+1 415 D00 0000 + i, the digit D from `prefix`,
    so a drill's numbers are not the last one's), stored and queued as send_bulk and the batch API store them."""
    from deliveries.services.bulk import messages_create_many
    from deliveries.services.messages import message_request_validate

    items = (
        message_request_validate(channel="sms", to=f"+1415{prefix % 8 + 2}{i:06d}", body=f"Drill message {i}")
        for i in range(count)
    )
    messages_create_many(items=items, chunk_size=2000)


def status_counts() -> Counter[str]:
    from django.db.models import Count

    from deliveries.models import Message

    rows = Message.objects.values_list("status").annotate(n=Count("pk")).order_by()
    return retrying(lambda: Counter(dict(rows)))


def message_rows() -> list[tuple[int, str, str, int]]:
    """(id, recipient, status, attempts) of every message."""
    from deliveries.models import Message

    return retrying(lambda: list(Message.objects.values_list("pk", "recipient", "status", "attempts")))
