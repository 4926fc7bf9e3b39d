import time

import django_rq
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from rq.worker import Worker

from deliveries.circuit_breakers import ProviderBreaker
from deliveries.exceptions import TransientDeliveryError
from deliveries.services.heartbeat import Heartbeat

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=1"
DEAD_QUEUES = {name: {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}
HEALTH_TOKEN = "health-token-for-tests"
WITH_TOKEN = {"HTTP_AUTHORIZATION": f"Bearer {HEALTH_TOKEN}"}


@pytest.fixture(autouse=True)
def health_token(settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN


@pytest.fixture
def pipeline_alive():
    """A dispatcher's beat stamped now and an RQ worker registered as alive, as the running processes do (RQ's own
    registration; tests/deliveries/test_health_processes.py runs the real processes)."""
    Heartbeat().beat()
    worker = Worker(["default"], connection=django_rq.get_connection("default"))
    worker.register_birth()
    yield worker
    worker.register_death()


def test_live_answers_ok(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_database_redis_dispatcher_and_workers_to_the_health_token(client, pipeline_alive):
    response = client.get("/health/ready", **WITH_TOKEN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["dispatcher"]["alive"] == 1
    assert body["checks"]["workers"]["count"] == 1


def test_ready_is_503_without_a_dispatcher_or_a_worker_and_says_which(client):
    response = client.get("/health/ready", **WITH_TOKEN)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == [
        "dispatcher: none has beaten (start manage.py run_dispatcher)",
        "workers: none alive",
    ]
    assert (client.get("/health/ready").status_code, client.get("/health/ready").json()) == (503, {"status": "failing"})


def test_ready_is_503_when_the_last_dispatcher_beat_is_older_than_the_limit(client, settings, pipeline_alive):
    settings.DISPATCHER_HEARTBEAT_MAX_AGE = 60
    django_rq.get_connection("default").delete("tidings:dispatcher:heartbeats")
    Heartbeat().beat(now=time.time() - 75)

    response = client.get("/health/ready", **WITH_TOKEN)
    assert response.status_code == 503
    assert response.json()["failing"] == ["dispatcher: last beat 75 s ago (limit 60 s)"]

    Heartbeat().beat()
    assert client.get("/health/ready", **WITH_TOKEN).status_code == 200


def test_ready_is_503_when_no_worker_is_alive(client, pipeline_alive):
    pipeline_alive.register_death()
    response = client.get("/health/ready", **WITH_TOKEN)
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers: none alive"]


def test_a_provider_paused_by_its_breaker_is_degraded_not_failing(client, settings, pipeline_alive):
    settings.BREAKER_FAIL_MAX = 1
    breaker = ProviderBreaker("locmem")
    breaker.record([TransientDeliveryError("down", provider="locmem")])
    try:
        response = client.get("/health/ready", **WITH_TOKEN)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["providers"]["providers"]["sms"]["breaker"]["state"] == "open"
        assert client.get("/health/ready").json() == {"status": "ok"}
    finally:
        breaker.reset()


def test_ready_lists_the_providers_of_all_four_channels(client, pipeline_alive):
    providers = client.get("/health/ready", **WITH_TOKEN).json()["checks"]["providers"]["providers"]
    assert set(providers) == {"sms", "whatsapp", "messenger", "email"}


@override_settings(RQ_QUEUES=DEAD_QUEUES)
def test_ready_is_503_when_redis_is_unreachable(client):
    response = client.get("/health/ready", **WITH_TOKEN)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection refused" in body["checks"]["redis"]["error"]
    [failing] = body["failing"]  # said once, not again for the dispatcher and workers read from Redis
    assert failing.startswith("redis: unreachable (")


def test_ready_tells_anyone_else_only_ok(client, pipeline_alive):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer a-guess"}, {"HTTP_AUTHORIZATION": HEALTH_TOKEN}):
        response = client.get("/health/ready", **headers)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


@override_settings(RQ_QUEUES=DEAD_QUEUES)
def test_ready_tells_anyone_else_only_failing_without_the_error_text(client):
    response = client.get("/health/ready")
    assert (response.status_code, response.json()) == (503, {"status": "failing"})
    assert b"Connection refused" not in response.content


def test_without_a_health_token_set_nobody_gets_details(client, settings, pipeline_alive):
    settings.HEALTH_TOKEN = ""
    response = client.get("/health/ready", HTTP_AUTHORIZATION="Bearer ")
    assert response.json() == {"status": "ok"}


@override_settings(RQ_QUEUES=DEAD_QUEUES, REDIS_URL=DEAD_REDIS)
def test_system_check_names_the_unreachable_redis():
    with pytest.raises(SystemCheckError, match=r"tidings.E001.*Redis is unreachable at redis://127.0.0.1:1/0"):
        call_command("check")


def test_system_check_passes_with_redis_up():
    call_command("check")


@override_settings(SEND_LEASE_SECONDS=10, TWILIO_TIMEOUT=10, SMS_RATE_LIMIT="lots")
def test_system_check_flags_a_short_lease_and_a_bad_rate():
    from deliveries.checks import check_reliability_settings

    messages = {m.id: m.msg for m in check_reliability_settings()}
    assert "SEND_LEASE_SECONDS (10) is not well above TWILIO_TIMEOUT (10)" in messages["tidings.W002"]
    assert messages["tidings.E003"].startswith("SMS_RATE_LIMIT='lots' is not a rate")


@pytest.mark.parametrize(("ttl", "refused"), [(0, True), (19, True), (20, False), (60, False)])
def test_a_worker_ttl_rq_would_ignore_or_renew_every_second_is_refused(settings, ttl, refused):
    from deliveries.checks import check_reliability_settings

    settings.WORKER_TTL = ttl
    found = {m.id: m.msg for m in check_reliability_settings()}
    assert ("tidings.E005" in found) is refused
    if refused:
        assert found["tidings.E005"].startswith(f"WORKER_TTL ({ttl}) is under 20 seconds")


@pytest.mark.parametrize(
    ("lease", "database_wait", "smtp", "warned"),
    [
        (60, 20, False, None),  # the defaults: Twilio's 10 s + 20 s + 5 s fit
        (60, 20, True, None),  # an SMTP backend's 30 s + 20 s + 5 s fit
        (60, 30, True, "EMAIL_TIMEOUT (30) plus SEND_DATABASE_WAIT_SECONDS (30)"),
        (30, 20, False, "TWILIO_TIMEOUT (10) plus SEND_DATABASE_WAIT_SECONDS (20)"),
    ],
)
def test_the_lease_must_outlast_the_slowest_call_and_the_wait_for_a_lost_database(
    settings, lease, database_wait, smtp, warned
):
    from deliveries.checks import check_reliability_settings

    settings.SEND_LEASE_SECONDS, settings.SEND_DATABASE_WAIT_SECONDS = lease, database_wait
    if smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    messages = {m.id: m.msg for m in check_reliability_settings()}
    assert (warned in messages["tidings.W002"]) if warned else "tidings.W002" not in messages


def test_system_check_flags_a_take_over_time_too_close_to_the_job_timeout(settings):
    from deliveries.checks import check_reliability_settings

    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "default": {**settings.RQ_QUEUES["default"], "DEFAULT_TIMEOUT": 60}}
    settings.SEND_JOB_TAKE_OVER_SECONDS = 30
    assert "tidings.W003" not in {m.id for m in check_reliability_settings()}
    settings.SEND_JOB_TAKE_OVER_SECONDS = 31
    [warning] = [m for m in check_reliability_settings() if m.id == "tidings.W003"]
    assert warning.msg.startswith("SEND_JOB_TAKE_OVER_SECONDS (31) is more than half of RQ_JOB_TIMEOUT (60)")


def test_system_check_refuses_idempotency_keys_that_never_replay(settings):
    from deliveries.checks import check_reliability_settings

    assert "tidings.E004" not in {m.id for m in check_reliability_settings()}
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 0
    [error] = [m for m in check_reliability_settings() if m.id == "tidings.E004"]
    assert error.msg.startswith("IDEMPOTENCY_KEY_TTL_HOURS (0) is not positive")


def test_ready_shows_each_providers_circuit_breaker_and_rate(client, settings):
    settings.SMS_RATE_LIMIT = "30/second"
    providers = client.get("/health/ready", **WITH_TOKEN).json()["checks"]["providers"]
    assert providers["ok"] is True
    assert providers["providers"]["sms"]["provider"] == "locmem"
    assert providers["providers"]["sms"]["breaker"]["state"] == "closed"
    assert providers["providers"]["sms"]["rate"]["limits"] == [{"limit": "30 per 1 second", "remaining": 30}]
