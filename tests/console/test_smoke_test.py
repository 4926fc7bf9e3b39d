"""`manage.py smoke_test`, run as an operator runs it (a process of its own, its exit code, its lines), against the
test database, the real Redis, the fake providers and a live server standing in for PUBLIC_BASE_URL."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import django_rq
import pytest
from django.db import connection
from rq import Queue, Worker

from deliveries.health import dispatcher_status, workers_status
from deliveries.models import Category, Message, Status
from deliveries.services.heartbeat import Heartbeat
from tests.conftest import WEBHOOK_SECRET
from tests.support import ROOT, CallbackReceiver, process_env, start_manage, stop, wait_for

# The smoke test checks providers, Redis and processes, not the database: `make test` runs it on PostgreSQL only
# (db_neutral); by hand on SQLite, its runs with worker and dispatcher processes are still skipped (CI time).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_neutral]
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="worker processes: PostgreSQL only")

VERIFY_TOKEN = "smoke-verify-token"
PSID = "1234567890123456"
LINE = re.compile(r"^(ok|FAIL|skip)\s+(.+?): (.*)$")


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def provider_settings_env(live_server, fake_twilio, fake_postmark, fake_messenger) -> dict[str, str]:
    """What the worker, the dispatcher and the smoke test are told, as production is told of the real providers."""
    return {
        "PUBLIC_BASE_URL": live_server.url,
        "SMS_BACKEND": "twilio",
        "WHATSAPP_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886",
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "POSTMARK_SERVER_TOKEN": fake_postmark.server_token,
        "POSTMARK_API_URL": fake_postmark.url + "/",
        "ANYMAIL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MESSENGER_BACKEND": "graph",
        "MESSENGER_PAGE_ACCESS_TOKEN": fake_messenger.access_token,
        "MESSENGER_APP_SECRET": fake_messenger.app_secret,
        "MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "MESSENGER_GRAPH_API_URL": fake_messenger.url,
    }


@pytest.fixture
def providers_env(live_callbacks, fake_twilio, fake_postmark, fake_messenger, settings):
    """Every provider configured (the live server, which takes the webhooks, is configured the same way)."""
    settings.MESSENGER_VERIFY_TOKEN = VERIFY_TOKEN
    return provider_settings_env(live_callbacks, fake_twilio, fake_postmark, fake_messenger)


def smoke_test(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "smoke_test", *args],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def lines(result: subprocess.CompletedProcess) -> dict[str, tuple[str, str]]:
    """Each check's (outcome, rest of its line), by name. Progress lines (`...`) are left out."""
    found = {}
    for line in result.stdout.splitlines():
        match = LINE.match(line)
        if match:
            found[match[2]] = (match[1], match[3])
    return found


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def failed_summary(result: subprocess.CompletedProcess) -> str:
    """The one line on stderr that ends a failing run."""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("CommandError: ") and " checks failed: " in line, result.stderr
    return line


@pytest.mark.slow
@postgresql_only
def test_every_check_passes_and_a_message_on_each_channel_is_delivered_with_a_worker_and_dispatcher_running(
    providers_env, fake_twilio, fake_postmark, fake_messenger
):
    processes = [
        start_manage("run_worker", env=process_env(**providers_env)),
        start_manage("run_dispatcher", "--interval", "0.2", env=process_env(**providers_env)),
    ]
    try:
        wait_for(
            lambda: workers_status()["ok"] and dispatcher_status()["ok"], timeout=60, message="a worker and a beat"
        )
        result = smoke_test(
            "--to", "+14155550100",
            "--to", "whatsapp:+14155550101",
            "--to", "ada@example.com",
            "--to", f"messenger:{PSID}",
            **providers_env,
        )  # fmt: skip
    finally:
        outputs = [stop(process) for process in processes]
    assert "Traceback" not in "".join(outputs), outputs
    assert_no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = lines(result)
    assert {name: outcome for name, (outcome, _) in checks.items()} == {
        "database": "ok",
        "redis (queues high, default, low)": "ok",
        "redis (cache)": "ok",
        "redis (send rate limits)": "ok",
        "redis (API rate limits)": "ok",
        "redis (circuit breakers)": "ok",
        "workers": "ok",
        "dispatcher": "ok",
        "sms (twilio)": "ok",
        "whatsapp (twilio)": "ok",
        "messenger (graph)": "ok",
        "email (postmark)": "ok",
        "webhooks (twilio status)": "ok",
        "webhooks (messenger)": "ok",
        "webhooks (email tracking)": "ok",
        "send sms → +14155550100": "ok",
        "send whatsapp → whatsapp:+14155550101": "ok",
        "send email → ada@example.com": "ok",
        f"send messenger → messenger:{PSID}": "ok",
    }, result.stdout
    assert result.stdout.strip().endswith("All 19 checks passed (0 not checked).")
    assert checks["redis (cache)"][1].startswith("Redis ")
    assert " at 127.0.0.1:6379 db " in checks["redis (cache)"][1] and ", local, no TLS;" in checks["redis (cache)"][1]
    assert checks["workers"][1].startswith("1 alive, every queue served; jobs waiting: high ")
    assert checks["sms (twilio)"][1] == (
        f"account {fake_twilio.account_sid} “Tidings fake account” active, sending from +15005550006"
    )
    assert checks["messenger (graph)"][1] == f"page “Tidings fake page” ({fake_messenger.page_id}) through Graph v19.0"
    assert checks["email (postmark)"][1].startswith("server “Tidings fake server” (ID 23)")
    assert checks["webhooks (twilio status)"][1].endswith(
        "answers as Tidings (405 to a GET: POST only, signed by Twilio)"
    )
    for name, (_, detail) in checks.items():
        if name.startswith("send "):
            assert detail.startswith("delivered in "), (name, detail)

    # Through the normal path to each provider, once each, and recorded as what they are.
    assert fake_twilio.count_by_to() == {"+14155550100": 1, "whatsapp:+14155550101": 1}
    assert fake_postmark.count_by_to() == {"ada@example.com": 1}
    assert fake_messenger.count_by_to() == {PSID: 1}
    messages = Message.objects.filter(metadata__smoke_test=True)
    assert {(m.channel, m.status, m.category) for m in messages} == {
        (channel, Status.DELIVERED, Category.TRANSACTIONAL) for channel in ("sms", "whatsapp", "email", "messenger")
    }
    assert "queued" in result.stdout and "...  send sms → +14155550100: delivered" in result.stdout


def test_with_redis_unreachable_every_connection_fails_on_its_own_line_and_the_exit_code_says_so(providers_env):
    port = closed_port()
    result = smoke_test(**{**providers_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})

    assert_no_traceback(result)
    assert result.returncode == 1
    checks = lines(result)
    for name in ("queues high, default, low", "cache", "send rate limits", "API rate limits", "circuit breakers"):
        outcome, detail = checks[f"redis ({name})"]
        assert outcome == "FAIL"
        assert detail.startswith(f"127.0.0.1:{port} db 0, local, no TLS: Error 111 connecting"), detail
        assert detail.endswith(f"→ check REDIS_URL, and that Redis answers at 127.0.0.1:{port} db 0 from this host")
    assert checks["workers"][0] == checks["dispatcher"][0] == "FAIL"
    assert checks["database"][0] == "ok"  # the rest is still checked
    assert checks["sms (twilio)"][0] == "ok"
    assert "redis (cache)" in failed_summary(result)


def test_a_wrong_twilio_auth_token_fails_the_twilio_channels_and_nothing_is_sent_to_them(providers_env, fake_twilio):
    Heartbeat().beat()
    result = smoke_test("--to", "+14155550100", "--timeout", "5", **{**providers_env, "TWILIO_AUTH_TOKEN": "wrong"})

    assert_no_traceback(result)
    assert result.returncode == 1
    checks = lines(result)
    assert checks["sms (twilio)"] == (
        "FAIL",
        f"Twilio refused the credentials of account {fake_twilio.account_sid} (HTTP 401, code 20003) "
        "→ check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account info)",
    )
    assert checks["whatsapp (twilio)"][0] == "FAIL"
    assert checks["send sms → +14155550100"] == (
        "FAIL",
        "not sent: the sms (twilio) check failed → fix the failures above first",
    )
    assert checks["email (postmark)"][0] == checks["messenger (graph)"][0] == "ok"
    assert fake_twilio.received == []
    assert not Message.objects.exists()


def test_with_no_worker_alive_the_workers_line_fails_and_names_the_command_to_start(providers_env):
    Heartbeat().beat()  # a dispatcher beating, so only the worker is missing
    result = smoke_test(**providers_env)

    assert_no_traceback(result)
    assert result.returncode == 1
    checks = lines(result)
    assert checks["workers"] == (
        "FAIL",
        "none alive: messages are accepted but nothing is sent → start manage.py run_worker, on a host that reaches "
        "this Redis",
    )
    assert checks["dispatcher"][0] == "ok"
    assert failed_summary(result) == "CommandError: 1 of 15 checks failed: workers."


def test_a_worker_that_listens_to_some_queues_only_fails_naming_the_queues_nobody_serves(providers_env):
    Heartbeat().beat()
    worker = Worker([Queue("high", connection=django_rq.get_connection("high"))], connection=django_rq.get_connection())
    worker.register_birth()  # alive as far as RQ knows, as `run_worker high` would be
    try:
        result = smoke_test(**providers_env)
    finally:
        worker.register_death()

    assert_no_traceback(result)
    assert result.returncode == 1
    assert lines(result)["workers"] == (
        "FAIL",
        "1 alive, but none listens to default, low: those messages wait forever → start manage.py run_worker "
        "without naming queues (it listens to high, default and low)",
    )


@pytest.mark.parametrize("answer", ["nothing listens", "a proxy's 502"])
def test_webhook_urls_that_do_not_reach_tidings_fail(providers_env, answer):
    with CallbackReceiver(status=502) as proxy:
        public = f"http://127.0.0.1:{closed_port()}" if answer == "nothing listens" else proxy.url
        result = smoke_test(**{**providers_env, "PUBLIC_BASE_URL": public})

    assert_no_traceback(result)
    assert result.returncode == 1
    checks = lines(result)
    for name in ("twilio status", "messenger", "email tracking"):
        outcome, detail = checks[f"webhooks ({name})"]
        assert outcome == "FAIL"
        assert detail.startswith(f"{public}/webhooks/"), detail
        if answer == "nothing listens":
            assert "unreachable from here (Connection refused) → check PUBLIC_BASE_URL" in detail
        else:
            assert "answered 502 Bad Gateway, not as Tidings" in detail
    assert VERIFY_TOKEN not in result.stdout  # the handshake's query string is never printed


@pytest.mark.slow
@postgresql_only
def test_a_target_the_provider_refuses_and_one_without_a_receipt_fail_with_what_happened(providers_env, fake_twilio):
    fake_twilio.outcome = "none"  # accepted, then no status callback ever
    Heartbeat().beat()
    worker = start_manage("run_worker", env=process_env(**providers_env))
    try:
        wait_for(lambda: workers_status()["ok"], timeout=60, message="a worker")
        result = smoke_test("--to", "+15005550002", "--to", "+14155550100", "--timeout", "4", **providers_env)
    finally:
        output = stop(worker)
    assert "Traceback" not in output
    assert_no_traceback(result)
    assert result.returncode == 1
    checks = lines(result)
    refused = Message.objects.get(recipient="+15005550002")
    outcome, detail = checks["send sms → +15005550002"]
    assert outcome == "FAIL"
    assert detail.startswith(f"failed: {refused.last_error_message} (code 21612), message {refused.pk}")
    assert detail.endswith("→ check the address, and the provider's log for this message")
    silent = Message.objects.get(recipient="+14155550100")
    assert checks["send sms → +14155550100"] == (
        "FAIL",
        f"sent (provider id {silent.provider_message_id}) but no delivery receipt after 4 s, message {silent.pk} "
        "→ check the webhook lines above, and the provider's webhook settings (README, Webhooks)",
    )


def test_a_target_that_is_no_address_is_refused_in_one_line_before_anything_runs():
    result = smoke_test("--to", "+14155550100", "--to", "hello")

    assert result.returncode == 1
    assert result.stdout == ""  # no check ran, nothing was sent
    assert result.stderr.strip() == (
        "CommandError: --to 'hello': 'hello' is not a phone number. Use E.164 format with the country code, "
        "like +14155550100."
    )
    assert not Message.objects.exists()
