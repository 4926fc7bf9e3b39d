"""Helpers for tests that run real worker and dispatcher processes against the test database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import django_rq
from django.conf import settings
from django.db import connection
from rq import SimpleWorker

from fake_providers.postmark import FakePostmark
from fake_providers.twilio import FakeTwilio

ROOT = Path(__file__).resolve().parent.parent


def run_burst_worker(*queues: str) -> None:
    """A real RQ worker, in this process, until the queues are empty."""
    django_rq.get_worker(*(queues or ("high", "default", "low")), worker_class=SimpleWorker).work(burst=True)


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes we start."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "messaging_project.settings.test",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


def start_manage(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen, timeout: float = 15) -> str:
    """Stop a process politely (SIGTERM), then firmly; return what it printed."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def wait_for(predicate, *, timeout: float, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


def provider_env(fake_twilio: FakeTwilio, fake_postmark: FakePostmark | None = None) -> dict[str, str]:
    """Environment for worker processes so they send to the fakes this test process runs."""
    env = {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake_twilio.url,
    }
    if fake_postmark is not None:
        env.update(
            {
                "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
                "POSTMARK_SERVER_TOKEN": fake_postmark.server_token,
                "POSTMARK_API_URL": fake_postmark.url + "/",
            }
        )
    return env


def twilio_signed_post(
    client, path: str, params: dict[str, str], *, auth_token: str, base_url: str = "http://testserver"
):
    """POST form params to one of our Twilio webhooks, signed as Twilio signs: with the auth token, over the
    public URL and the sorted params (computed by the twilio library's own RequestValidator)."""
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(auth_token).compute_signature(base_url + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


class CallbackReceiver:
    """A loopback HTTP server that records every request it gets, standing in for the application when a test
    looks at the fake providers' callbacks on their own. Answers `status` (200 by default)."""

    def __init__(self, status: int = 200) -> None:
        from aiohttp import web

        from fake_providers.server import BackgroundServer

        self.status = status
        self.requests: list[dict] = []

        async def record(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append(
                {
                    "path": request.path_qs,
                    "headers": dict(request.headers),
                    "body": body,
                    "form": dict(await request.post()),
                }
            )
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        self.server = BackgroundServer(app)

    def __enter__(self) -> CallbackReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url


def other_connections() -> int:
    """How many other connections the test database has now (PostgreSQL): threads must close theirs."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def at_once(function, times: int) -> list:
    """Run `function` in `times` threads started together (a barrier), each closing its database connection at
    the end; returns what the calls returned, in the order they finished."""
    start, results = threading.Barrier(times), []

    def run():
        start.wait()
        try:
            results.append(function())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# What an attacker stores through the API, a provider's callback or an import: markup that runs script, a break-out
# of an HTML attribute, and template syntax (shown as text, never evaluated).
HOSTILE = '<img src=x onerror=alert(1)>"><script>alert(2)</script>{{ name }}'
HOSTILE_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def assert_shown_only_escaped(page: str, *, times: int = 1) -> None:
    """The hostile content is on the page (at least `times` times), and only ever escaped."""
    assert "<img src=x" not in page and "<script>alert(2)" not in page and '"><script' not in page
    assert page.count(HOSTILE_ESCAPED) >= times, page


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` in a fresh process with only PATH and `env` in its environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
