"""The dispatcher's heartbeat, as readiness, the dashboard and the alerts read it."""

from io import StringIO

import pytest
from django.core.management import call_command

from deliveries.health import dispatcher_status, providers_status
from deliveries.services.heartbeat import Heartbeat

SEEN_DURING_PASS: list[dict] = []


def record_dispatcher_status():
    SEEN_DURING_PASS.append(dispatcher_status())


@pytest.mark.django_db(transaction=True)  # the dispatcher closes its connections
def test_a_running_dispatcher_beats_and_a_stopped_one_takes_its_beat_away(settings):
    settings.DISPATCHER_PERIODIC_TASKS = [("tests.deliveries.test_heartbeat.record_dispatcher_status", 60)]
    SEEN_DURING_PASS.clear()
    assert dispatcher_status()["ok"] is False  # none has run yet

    call_command("run_dispatcher", "--once", stdout=StringIO())

    [during] = SEEN_DURING_PASS
    assert during["ok"] is True and during["alive"] == 1
    assert during["last_beat_age_seconds"] < 5
    after = dispatcher_status()
    assert after["ok"] is False and after["dispatchers"] == []


def test_a_beat_older_than_the_limit_is_a_dead_dispatcher(settings):
    settings.DISPATCHER_HEARTBEAT_MAX_AGE = 60
    Heartbeat().beat(now=1_000_000.0)

    assert dispatcher_status(now=1_000_030.0)["ok"] is True
    stale = dispatcher_status(now=1_000_061.0)
    assert stale["ok"] is False
    assert stale["last_beat_age_seconds"] == 61.0
    assert [d["age_seconds"] for d in stale["dispatchers"]] == [61.0]


def test_beats_are_throttled_to_one_every_few_seconds(settings):
    heartbeat = Heartbeat(every=5)
    assert heartbeat.beat(now=100.0) is True
    assert heartbeat.beat(now=103.0) is False
    assert heartbeat.beat(now=105.0) is True


def test_the_providers_panel_covers_every_channel():
    assert set(providers_status()["providers"]) == {"sms", "whatsapp", "messenger", "email"}
