"""Alerts: each rule's figure, firing once and clearing once (with several checkers at once too), the command."""

import time
from datetime import timedelta
from io import StringIO

import django_rq
import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rq.worker import Worker

from console.models import Alert, AlertEvent
from console.services.alerts import alert_apply, alerts_check
from deliveries.circuit_breakers import ProviderBreaker
from deliveries.exceptions import TransientDeliveryError
from deliveries.models import Status
from deliveries.services.heartbeat import Heartbeat
from tests.console.alert_support import PrivateRedis, finding
from tests.factories import MessageFactory
from tests.support import at_once, run_manage, twilio_signed_post

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=1"
DEAD_QUEUES = {name: {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}


@pytest.fixture(autouse=True)
def clear_at_once(settings):
    settings.ALERT_CLEAR_AFTER_SECONDS = 0


def lines_by_key(lines):
    return {line.key: line for line in lines}


def events(key):
    return list(AlertEvent.objects.filter(alert__key=key).order_by("at", "id").values_list("kind", flat=True))


def test_an_alert_fires_once_while_its_rule_sees_trouble_and_clears_once():
    now = timezone.now()
    assert alert_apply(finding(firing=False), now=now).changed == ""  # quiet from the start: nothing to say
    assert alert_apply(finding(firing=True, detail="35 %"), now=now).changed == "fired"
    assert alert_apply(finding(firing=True, detail="40 %"), now=now + timedelta(seconds=30)).changed == ""
    assert alert_apply(finding(firing=False, detail="2 %"), now=now + timedelta(seconds=60)).changed == "cleared"
    assert alert_apply(finding(firing=False), now=now + timedelta(seconds=90)).changed == ""

    assert events("test_alert") == ["fired", "cleared"]
    fired = AlertEvent.objects.get(kind="fired")
    assert fired.text == "FIRING: Test alert (test_alert): 35 %. Next: Do the thing."
    alert = Alert.objects.get(key="test_alert")
    assert (alert.state, alert.detail, alert.since) == ("clear", "a figure", now + timedelta(seconds=60))


def test_a_firing_alert_clears_only_once_it_has_fired_a_while_so_a_hovering_figure_sends_no_storm(settings):
    settings.ALERT_CLEAR_AFTER_SECONDS = 120
    start = timezone.now()
    alert_apply(finding(firing=True), now=start)
    held = alert_apply(finding(firing=False), now=start + timedelta(seconds=30))
    assert (held.state, held.changed) == ("firing", "")
    assert alert_apply(finding(firing=True), now=start + timedelta(seconds=60)).changed == ""
    assert alert_apply(finding(firing=False), now=start + timedelta(seconds=121)).changed == "cleared"
    assert events("test_alert") == ["fired", "cleared"]


@pytest.mark.django_db(transaction=True)
def test_several_checkers_at_once_fire_an_alert_once_and_clear_it_once():
    now = timezone.now()
    fired = at_once(lambda: alert_apply(finding(firing=True), now=now).changed, times=8)
    assert sorted(fired) == [""] * 7 + ["fired"]
    cleared = at_once(lambda: alert_apply(finding(firing=False), now=now + timedelta(seconds=1)).changed, times=8)
    assert sorted(cleared) == [""] * 7 + ["cleared"]
    assert events("test_alert") == ["fired", "cleared"]


def test_no_live_worker_fires_and_clears_when_one_registers():
    assert lines_by_key(alerts_check())["no_worker"].changed == "fired"
    worker = Worker(["default"], connection=django_rq.get_connection("default"))
    worker.register_birth()
    try:
        line = lines_by_key(alerts_check())["no_worker"]
    finally:
        worker.register_death()
    assert (line.state, line.changed, line.detail) == ("clear", "cleared", "1 worker(s) alive")
    assert events("no_worker") == ["fired", "cleared"]


def test_a_silent_dispatcher_fires_naming_its_last_beat(settings):
    settings.DISPATCHER_HEARTBEAT_MAX_AGE = 60
    Heartbeat().beat(now=time.time() - 90)
    line = lines_by_key(alerts_check())["dispatcher_silent"]
    assert (line.state, line.changed) == ("firing", "fired")
    assert line.detail == "the last dispatcher beat was 90 s ago (limit 60 s)"
    Heartbeat().beat()
    assert lines_by_key(alerts_check())["dispatcher_silent"].changed == "cleared"


def test_the_oldest_waiting_message_fires_past_its_minutes(settings):
    settings.ALERT_OLDEST_WAITING_MINUTES = 10
    MessageFactory(status=Status.QUEUED, queued_at=timezone.now() - timedelta(minutes=4))
    assert lines_by_key(alerts_check())["oldest_waiting"].state == "clear"
    MessageFactory(status=Status.QUEUED, queued_at=timezone.now() - timedelta(minutes=25))
    MessageFactory(status=Status.SCHEDULED, queued_at=timezone.now() - timedelta(hours=3))  # not waiting
    line = lines_by_key(alerts_check())["oldest_waiting"]
    assert (line.changed, line.detail) == ("fired", "the oldest queued message has waited 25 minutes (alert after 10)")


def test_a_provider_paused_by_its_breaker_fires_for_its_channels_only(settings):
    settings.BREAKER_FAIL_MAX = 1
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"  # SMS, WhatsApp, Messenger: locmem
    breaker = ProviderBreaker("locmem")
    breaker.record([TransientDeliveryError("down", provider="locmem")])
    try:
        lines = lines_by_key(alerts_check())
    finally:
        breaker.reset()
    assert lines["breaker_open:sms"].changed == "fired"
    assert lines["breaker_open:sms"].detail == "sms through locmem: circuit breaker open"
    assert lines["breaker_open:email"].state == "clear"
    assert lines_by_key(alerts_check())["breaker_open:sms"].changed == "cleared"


def test_webhook_signature_failures_fire_past_their_count(client, settings):
    settings.ALERT_WEBHOOK_SIGNATURE_FAILURES = 3
    settings.TWILIO_AUTH_TOKEN = "the-real-token"
    for _ in range(2):
        response = twilio_signed_post(client, "/webhooks/twilio/status/", {"MessageSid": "SM1"}, auth_token="forged")
        assert response.status_code == 403
    assert lines_by_key(alerts_check())["webhook_signature_failures"].state == "clear"
    assert client.post("/webhooks/messenger/", b"{}", content_type="application/json").status_code == 403
    line = lines_by_key(alerts_check())["webhook_signature_failures"]
    assert line.changed == "fired"
    assert line.detail == "3 webhook request(s) refused for their signature in the last 5 minutes (alert at 3)"


def test_redis_memory_fires_over_its_share_of_maxmemory_and_is_quiet_without_a_limit(settings):
    settings.ALERT_REDIS_MEMORY = 0.5
    line = lines_by_key(alerts_check())["redis_memory"]
    assert line.state == "clear" and "has no maxmemory limit" in line.detail  # the shared test Redis has none
    private = PrivateRedis(maxmemory="8mb")
    try:
        with override_settings(RQ_QUEUES=private.queues):
            assert lines_by_key(alerts_check())["redis_memory"].state == "clear"
            redis = django_rq.get_connection("default")
            for n in range(40):  # 4 MB in pieces: one big command's own buffer would pass the limit
                redis.set(f"ballast:{n}", b"x" * 100 * 2**10)
            line = lines_by_key(alerts_check())["redis_memory"]
    finally:
        private.stop()
    assert line.changed == "fired"
    assert "MB of its 8 MB maxmemory (" in line.detail and line.detail.endswith("; alert at 50%)")


def test_with_redis_down_that_fires_and_what_is_read_from_redis_keeps_its_state():
    alerts_check()  # no worker: firing
    with override_settings(RQ_QUEUES=DEAD_QUEUES, REDIS_URL=DEAD_REDIS):
        lines = lines_by_key(alerts_check())
    assert lines["redis_unreachable"].changed == "fired"
    assert "Redis does not answer at redis://127.0.0.1:1/0" in lines["redis_unreachable"].detail
    assert str(lines["no_worker"]).startswith("no_worker: unknown (could not check: ")
    assert Alert.objects.get(key="no_worker").state == "firing"
    assert events("no_worker") == ["fired"]
    # The breakers live in Redis too: unreadable is not open, so no provider is announced as paused.
    assert not Alert.objects.filter(key__startswith="breaker_open:", state="firing").exists()


def test_check_alerts_prints_one_line_per_alert_and_exits_zero():
    out = StringIO()
    call_command("check_alerts", stdout=out)
    lines = out.getvalue().splitlines()
    keys = {line.split(": ", 1)[0] for line in lines}
    assert "no_worker: firing (just fired): no worker is alive: nothing is being sent" in lines
    assert "redis_unreachable: clear: Redis answers" in lines
    assert keys == {
        "messages_held",
        "failure_rate",
        "oldest_waiting",
        "no_worker",
        "dispatcher_silent",
        "breaker_open:sms",
        "breaker_open:whatsapp",
        "breaker_open:messenger",
        "breaker_open:email",
        "redis_unreachable",
        "redis_memory",
        "webhook_signature_failures",
    }
    assert len(lines) == len(keys)
    call_command("check_alerts", stdout=(again := StringIO()))
    assert "no_worker: firing: no worker is alive: nothing is being sent" in again.getvalue().splitlines()


def test_check_alerts_without_its_database_exits_non_zero_with_one_line():
    result = run_manage(
        "check_alerts",
        DJANGO_SETTINGS_MODULE="messaging_project.settings.test",
        DATABASE_URL="postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: Cannot check the alerts: the database is unreachable (")
