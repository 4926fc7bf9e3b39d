"""GET /metrics: the bearer token, and what Prometheus reads there, scraped and parsed as Prometheus would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import checks
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from analytics.services.rollup import analytics_rollup
from console.metrics_checks import check_metrics_are_on, check_metrics_settings
from deliveries.circuit_breakers import ProviderBreaker
from deliveries.exceptions import TransientDeliveryError
from deliveries.models import Message, Status
from tests.factories import MessageFactory
from tests.support import run_burst_worker, twilio_signed_post

TOKEN = "metrics-test-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0
    settings.PROMETHEUS_MULTIPROC_DIR = ""


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels))


# --- The token ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
def test_metrics_without_the_right_bearer_token_is_401_and_says_how(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}

    response = client.get("/metrics", **extra)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"tidings_" not in response.content


@pytest.mark.django_db
def test_metrics_is_404_while_metrics_token_is_unset(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_metrics_answers_only_get(client):
    assert client.post("/metrics", **AUTH).status_code == 405


def test_check_deploy_warns_while_metrics_are_off(settings):
    settings.METRICS_TOKEN = ""
    assert [problem.id for problem in check_metrics_are_on()] == ["tidings.W053"]
    settings.METRICS_TOKEN = TOKEN
    assert check_metrics_are_on() == []


def test_checks_refuse_a_missing_multiprocess_dir_and_an_exporter_without_one(settings, tmp_path):
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path / "missing")
    settings.METRICS_PORT = None
    assert [problem.id for problem in check_metrics_settings()] == ["tidings.E051"]
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    settings.METRICS_PORT = 9108
    problems = check_metrics_settings()
    assert [problem.id for problem in problems] == ["tidings.E052"]
    assert all(problem.level == checks.ERROR for problem in problems)
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    assert check_metrics_settings() == []


# --- What was sent -----------------------------------------------------------------------------------------------


def post_messages(api, channel: str, recipients: list[str]) -> None:
    for to in recipients:
        fields = {"channel": channel, "to": to, "body": "Hello"}
        if channel == "email":
            fields["subject"] = "Hi"
        response = api.post("/api/v1/messages/", fields, format="json")
        assert response.status_code == 201, response.json()


@pytest.mark.django_db(transaction=True)
def test_scraped_counters_equal_what_was_sent_and_histograms_count_every_send(api, client, fake_twilio, fake_postmark):
    before = scrape(client)
    # +15005550002: Twilio refuses it (21612); inactive.example: Postmark has the address on its inactive list.
    post_messages(api, "sms", [f"+1415555{n:04d}" for n in range(5)] + ["+15005550002", "+15005550002"])
    post_messages(api, "email", ["ann@example.com", "bob@example.com", "cy@example.com", "gone@inactive.example"])

    run_burst_worker()
    analytics_rollup()
    after = scrape(client)

    for channel in ("sms", "email"):
        messages = Message.objects.filter(channel=channel)
        for status in (Status.SENT, Status.FAILED):
            assert value(after, "tidings_messages_total", channel=channel, status=status) == (
                messages.filter(status=status).count()
            ), (channel, status)
        assert value(after, "tidings_messages_total", channel=channel, status="queued") == messages.count()
    assert Message.objects.filter(status=Status.SENT).count() == 8
    assert Message.objects.filter(status=Status.FAILED).count() == 3

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Every call is counted once, refused or not; every message accepted once, end to end (none had a send_at).
    assert added("tidings_provider_call_seconds_count", channel="sms", provider="twilio") == fake_twilio.request_count
    assert added("tidings_provider_call_seconds_count", channel="sms") == 7
    assert added("tidings_provider_call_seconds_count", channel="email") == 4
    assert added("tidings_message_end_to_end_seconds_count", channel="sms") == 5
    assert added("tidings_message_end_to_end_seconds_count", channel="email") == 3
    assert added("tidings_message_end_to_end_seconds_bucket", channel="sms", le="+Inf") == 5
    assert added("tidings_message_end_to_end_seconds_sum", channel="sms") > 0
    assert added("tidings_schedule_lag_seconds_count") == 0
    # django-rq's collector is in the same output.
    assert value(after, "rq_jobs", queue="default", status="queued") == 0


@pytest.mark.django_db
def test_queue_depth_and_oldest_age_per_priority(client):
    now = timezone.now()
    for minutes, priority in [(10, "high"), (2, "high"), (1, "low")]:
        MessageFactory(status=Status.QUEUED, priority=priority, queued_at=now - timedelta(minutes=minutes))
    MessageFactory(status=Status.SENT, priority="default", queued_at=now - timedelta(hours=1))

    samples = scrape(client)

    assert value(samples, "tidings_queue_depth", priority="high") == 2
    assert value(samples, "tidings_queue_depth", priority="default") == 0
    assert value(samples, "tidings_queue_depth", priority="low") == 1
    assert 600 <= value(samples, "tidings_queue_oldest_age_seconds", priority="high") < 660
    assert value(samples, "tidings_queue_oldest_age_seconds", priority="default") == 0
    assert value(samples, "tidings_metrics_source_up", source="database") == 1


@pytest.mark.django_db
def test_breaker_state_per_provider_is_0_closed_and_2_open(client, settings):
    settings.BREAKER_FAIL_MAX = 2
    breaker = ProviderBreaker("locmem")
    breaker.reset()
    assert value(scrape(client), "tidings_provider_breaker_state", provider="locmem") == 0

    breaker.record([TransientDeliveryError("timeout", provider="locmem")] * 2)

    assert value(scrape(client), "tidings_provider_breaker_state", provider="locmem") == 2
    breaker.reset()


@pytest.mark.django_db
def test_the_figures_are_read_once_for_many_scrapes_within_the_cache_time(client, settings, django_assert_num_queries):
    settings.METRICS_CACHE_SECONDS = 30
    scrape(client)
    MessageFactory(status=Status.QUEUED, priority="high")
    with django_assert_num_queries(0):
        samples = scrape(client)
    assert value(samples, "tidings_queue_depth", priority="high") == 0


@pytest.mark.django_db
def test_webhook_events_are_counted_by_provider_kind_and_outcome(client, settings):
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.PUBLIC_BASE_URL = "http://testserver"
    sid = "SM" + "b" * 32
    message = MessageFactory(status=Status.SENT, provider="twilio", provider_message_id=sid, attempts=1)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "To": message.recipient, "From": "+15005550006"}
    before = scrape(client)

    path = f"/webhooks/twilio/status/?message={message.pk}&attempt=1"
    for _ in range(2):  # the second is a replay
        assert twilio_signed_post(client, path, params, auth_token="test-auth-token").status_code == 204
    unsigned = client.post(path, params)
    after = scrape(client)

    assert unsigned.status_code == 403

    def added(**labels: str) -> float:
        return value(after, "tidings_webhook_events_total", **labels) - value(
            before, "tidings_webhook_events_total", **labels
        )

    assert added(provider="twilio", kind="delivered", outcome="applied") == 1
    assert added(provider="twilio", kind="delivered", outcome="duplicate") == 1
    assert added(provider="twilio") == 2
