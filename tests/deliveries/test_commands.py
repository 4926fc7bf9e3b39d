import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from deliveries.models import ApiKey
from deliveries.services.api_keys import api_key_authenticate, hash_key
from tests.support import ROOT, run_manage

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_once_and_stores_only_its_hash():
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "billing", stdout=out, stderr=err)
    raw_key = out.getvalue().strip()
    api_key = ApiKey.objects.get(name="billing")
    assert api_key.key_hash == hash_key(raw_key)
    assert raw_key not in api_key.key_hash
    assert api_key_authenticate(raw_key) == api_key
    assert "shown only this once" in err.getvalue()


def test_create_api_key_refuses_a_duplicate_name():
    call_command("create_api_key", "billing", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_key", "billing", stdout=StringIO(), stderr=StringIO())


def test_create_api_key_without_scopes_says_the_key_has_full_access():
    err = StringIO()
    call_command("create_api_key", "billing", stdout=StringIO(), stderr=err)
    assert ApiKey.objects.get(name="billing").scopes == ["admin"]
    assert "full access" in err.getvalue()
    assert "--scopes" in err.getvalue()


def test_create_api_key_with_scopes_expiry_rate_and_senders():
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key",
        "shop",
        "--scopes",
        "messages:send,messages:read",
        "--expires-in",
        "30",
        "--rate",
        "100/second",
        "--senders",
        "+15005550006, shop@example.com",
        stdout=out,
        stderr=err,
    )
    api_key = ApiKey.objects.get(name="shop")
    assert api_key.scopes == ["messages:send", "messages:read"]
    assert api_key.rate == "100/second"
    assert api_key.allowed_senders == ["+15005550006", "shop@example.com"]
    assert timedelta(days=29, hours=23) < api_key.expires_at - timezone.now() <= timedelta(days=30)
    assert "may: messages:send, messages:read" in err.getvalue()
    assert api_key_authenticate(out.getvalue().strip()) == api_key


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--scopes", "messages:write"], "Unknown scope messages:write; the scopes are messages:send, messages:read"),
        (["--scopes", ","], "Give at least one scope"),
        (["--rate", "lots"], "'lots' is not a rate; write it like 100/second"),
        (["--expires-in", "0"], "--expires-in is a number of days, 1 or more."),
        (["--senders", "+1555, shop@example.com"], "'+1555' is not a sender"),
    ],
)
def test_create_api_key_refuses_bad_options_with_one_readable_line_and_stores_nothing(args, error):
    with pytest.raises(CommandError, match=re.escape(error)):
        call_command("create_api_key", "shop", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_create_api_key_refuses_a_name_too_long_to_store():
    with pytest.raises(CommandError, match="A key's name is 1 to 100 characters."):
        call_command("create_api_key", "x" * 101, stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_create_api_key_with_a_bad_scope_exits_non_zero_naming_the_scopes():
    result = run_manage(
        "create_api_key",
        "shop",
        "--scopes",
        "messages:sned",
        DJANGO_SETTINGS_MODULE="messaging_project.settings.test",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: Unknown scope messages:sned; the scopes are messages:send, messages:read, messages:cancel, "
        "templates:manage, contacts:manage, campaigns:manage, transactional:send, batches:send, admin."
    ]
    assert result.stdout == ""


def test_worker_without_redis_exits_with_one_readable_line():
    result = run_manage(
        "run_worker",
        "--burst",
        DJANGO_SETTINGS_MODULE="messaging_project.settings.test",
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Redis is unreachable at redis://127.0.0.1:1/0")
    assert "Traceback" not in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = run_manage("check", DJANGO_SETTINGS_MODULE="messaging_project.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_development_settings_point_at_the_fake_providers_make_run_starts():
    """`make run` starts `python -m fake_providers`; the development settings must match its defaults."""
    from fake_providers.__main__ import DEVELOPMENT_WEBHOOK_AUTH, parse_args
    from fake_providers.messenger import DEFAULT_ACCESS_TOKEN, DEFAULT_APP_SECRET
    from fake_providers.postmark import DEFAULT_SERVER_TOKEN
    from fake_providers.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    script = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps(["
        "s.SMS_BACKEND, s.WHATSAPP_BACKEND, s.MESSENGER_BACKEND, s.EMAIL_BACKEND, s.TWILIO_API_BASE_URL, "
        "s.TWILIO_ACCOUNT_SID, s.TWILIO_AUTH_TOKEN, s.ANYMAIL, s.MESSENGER_GRAPH_API_URL, "
        "s.MESSENGER_PAGE_ACCESS_TOKEN, s.MESSENGER_APP_SECRET, s.PUBLIC_BASE_URL]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "messaging_project.settings.development"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    sms, whatsapp, messenger, email, twilio_url, sid, token, anymail, graph_url, page_token, secret, public = (
        __import__("json").loads(result.stdout)
    )
    args = parse_args([])
    assert (sms, whatsapp, messenger, email) == ("twilio", "twilio", "graph", "anymail.backends.postmark.EmailBackend")
    assert twilio_url == f"http://127.0.0.1:{args.twilio_port}"
    assert (sid, token) == (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    assert anymail == {
        "POSTMARK_SERVER_TOKEN": DEFAULT_SERVER_TOKEN,
        "POSTMARK_API_URL": f"http://127.0.0.1:{args.postmark_port}/",
        "WEBHOOK_SECRET": DEVELOPMENT_WEBHOOK_AUTH,
    }
    assert graph_url == f"http://127.0.0.1:{args.messenger_port}"
    assert (page_token, secret) == (DEFAULT_ACCESS_TOKEN, DEFAULT_APP_SECRET)
    assert public == args.app_url


PERIODIC_CALLS: list[str] = []


def periodic_probe():
    PERIODIC_CALLS.append("probe")


def periodic_database_down():
    PERIODIC_CALLS.append("down")
    raise DatabaseError("connection refused")


@pytest.mark.django_db(transaction=True)  # the dispatcher closes its connections
def test_the_dispatcher_runs_the_periodic_tasks_of_its_setting_in_order_on_its_first_pass(settings):
    settings.DISPATCHER_PERIODIC_TASKS = [
        ("tests.deliveries.test_commands.periodic_probe", 3600),
        ("tests.deliveries.test_commands.periodic_probe", 0.5),
    ]
    PERIODIC_CALLS.clear()
    out = StringIO()
    call_command("run_dispatcher", "--once", stdout=out)
    assert PERIODIC_CALLS == ["probe", "probe"]
    assert "periodic_probe every 3600s, periodic_probe every 0.5s." in out.getvalue()


@pytest.mark.django_db(transaction=True)  # the dispatcher closes its connections
def test_a_periodic_task_that_loses_the_database_ends_the_pass_and_the_dispatcher_carries_on(settings, caplog):
    settings.DISPATCHER_PERIODIC_TASKS = [
        ("tests.deliveries.test_commands.periodic_database_down", 60),
        ("tests.deliveries.test_commands.periodic_probe", 60),
    ]
    PERIODIC_CALLS.clear()
    call_command("run_dispatcher", "--once", stdout=StringIO())
    assert PERIODIC_CALLS == ["down"]
    assert "Database unavailable, retrying in a moment: connection refused" in caplog.text


def test_the_dispatchers_periodic_tasks_are_the_scheduler_the_reconciler_the_rollups_the_alerts_and_prices(settings):
    assert [path for path, _ in settings.DISPATCHER_PERIODIC_TASKS] == [
        "campaigns.services.campaign_scheduler.campaigns_tick",
        "deliveries.services.reconciler.reconcile",
        "analytics.services.rollup.rollup_tick",
        "console.services.alerts.alerts_check",
        "deliveries.services.archive_erasure.archive_erasure_tick",  # with or without ARCHIVE_AFTER_DAYS
        "deliveries.services.actual_prices.price_tick",
    ]
    assert dict(settings.DISPATCHER_PERIODIC_TASKS)["deliveries.services.reconciler.reconcile"] == max(
        settings.RECONCILE_AFTER / 3, 1.0
    )


def test_create_api_key_with_countries_narrows_the_global_lists_and_never_widens_them(settings):
    settings.SMS_ALLOWED_COUNTRIES = ["GB", "US"]
    err = StringIO()
    call_command("create_api_key", "shop", "--countries", "gb, US", stdout=StringIO(), stderr=err)
    assert ApiKey.objects.get(name="shop").allowed_countries == ["GB", "US"]
    assert "It may send SMS and WhatsApp to: GB, US." in err.getvalue()
    with pytest.raises(CommandError, match=r"^BR is not in SMS_ALLOWED_COUNTRIES \(GB, US\): a key's countries"):
        call_command("create_api_key", "wider", "--countries", "GB,BR", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match=r"^UK is not an ISO 3166-1 alpha-2 code"):
        call_command("create_api_key", "typo", "--countries", "UK", stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.filter(name__in=["wider", "typo"]).exists()
