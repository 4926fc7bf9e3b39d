"""Production settings under `manage.py check --deploy`, each run in a fresh process with only the environment given.

A complete production environment passes at --fail-level WARNING; each missing secret or unsafe default is named.
"""

import os

from tests.support import run_manage

COMPLETE_PRODUCTION_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "messaging_project.settings.production",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "SECRET_KEY_FALLBACKS": "the-previous-long-random-production-secret-key-0123456789-abcdefghijklmn",
    "SUPPRESSION_HASH_KEY": "a-long-random-suppression-hash-key-0123456789-abcdefghijklmnopqrstuvwx",
    "ALLOWED_HOSTS": "tidings.example.com",
    "PUBLIC_BASE_URL": "https://tidings.example.com",
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-auth-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "POSTMARK_SERVER_TOKEN": "postmark-server-token",
    "ANYMAIL_WEBHOOK_SECRET": "tidings:a-long-random-webhook-password",
    "MESSENGER_PAGE_ACCESS_TOKEN": "page-access-token",
    "MESSENGER_APP_SECRET": "app-secret",
    "MESSENGER_VERIFY_TOKEN": "verify-token",
    "HEALTH_TOKEN": "health-token",
    "METRICS_TOKEN": "metrics-token",
    **({"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {}),
}


def production(**changes: str | None) -> dict[str, str]:
    """The complete production environment with some variables changed (None: removed)."""
    env = {**COMPLETE_PRODUCTION_ENVIRONMENT, **changes}
    return {name: value for name, value in env.items() if value is not None}


def test_deploy_check_is_clean_with_a_complete_production_environment():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_deploy_check_fails_with_an_error_when_the_email_webhook_secret_is_missing():
    result = run_manage("check", "--deploy", **production(ANYMAIL_WEBHOOK_SECRET=None))
    assert result.returncode != 0  # an Error stops a deploy even at the default fail level
    assert "ERROR" in result.stderr and "tidings.E011" in result.stderr
    assert "ANYMAIL_WEBHOOK_SECRET is empty" in result.stderr


def test_deploy_check_warns_when_callbacks_cannot_reach_us_or_messenger_lacks_its_secrets():
    result = run_manage(
        "check", "--deploy", **production(PUBLIC_BASE_URL="http://127.0.0.1:8000", MESSENGER_APP_SECRET=None)
    )
    for check_id in ("tidings.W010", "tidings.W012"):
        assert check_id in result.stderr


def test_production_refuses_to_start_without_an_explicit_email_backend():
    result = run_manage("check", **production(EMAIL_BACKEND=None))
    assert result.returncode != 0
    assert "EMAIL_BACKEND is not set: production would print every email to the log" in result.stderr


def test_production_refuses_to_start_without_a_suppression_hash_key():
    result = run_manage("check", **production(SUPPRESSION_HASH_KEY=None))
    assert result.returncode != 0
    assert "SUPPRESSION_HASH_KEY is not set" in result.stderr


def test_production_takes_the_console_email_backend_when_it_is_asked_for_explicitly():
    result = run_manage("check", **production(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend"))
    assert result.returncode == 0, result.stderr


def test_deploy_check_warns_while_metrics_are_off():
    result = run_manage("check", "--deploy", **production(METRICS_TOKEN=None))
    assert result.returncode == 0  # a warning: a site may do without Prometheus
    assert "tidings.W053" in result.stderr and "METRICS_TOKEN is not set" in result.stderr
