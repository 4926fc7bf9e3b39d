"""The dashboard's "Now" panel: queues, messages in flight and scheduled, workers and what they do, the dispatcher,
providers' breakers and rates, Redis memory, throughput, failure rate and schedule lag; cached a few seconds;
shown only to staff who may see messages, escaped."""

import json
import re
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.utils import timezone
from rq import Worker

from console.services.now import (
    CACHE_KEY,
    COUNT_CAP,
    capped_count,
    failure_share,
    in_flight_now,
    now_build,
    now_snapshot,
    queues_now,
    redis_memory_now,
    scheduled_now,
    workers_now,
)
from console.templatetags.console_now import age, capped
from deliveries.circuit_breakers import ProviderBreaker
from deliveries.exceptions import TransientDeliveryError
from deliveries.models import Message, Priority, Status
from deliveries.services.dispatch import SEND_JOB
from deliveries.services.heartbeat import Heartbeat
from deliveries.staff_roles import VIEWERS, staff_roles_ensure
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def queued(priority: str, minutes_ago: float, channel: str = "sms") -> Message:
    return MessageFactory(
        status=Status.QUEUED,
        priority=priority,
        channel=channel,
        queued_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def staff(client, *permissions: str, superuser: bool = False) -> User:
    user = User.objects.create_user("staff", password="pw", is_staff=True, is_superuser=superuser)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return user


def test_each_queue_shows_its_waiting_messages_and_the_oldest_ones_age():
    now = timezone.now()
    queued(Priority.HIGH, 10)
    queued(Priority.HIGH, 2)
    queued(Priority.LOW, 90)
    MessageFactory(status=Status.SENT, priority=Priority.DEFAULT)
    by_name = {q["name"]: q for q in queues_now(now)}
    assert [by_name[name]["waiting"] for name in ("high", "default", "low")] == [2, 0, 1]
    assert 599 <= by_name["high"]["oldest_age_seconds"] <= 601
    assert by_name["default"]["oldest_age_seconds"] is None
    assert 5399 <= by_name["low"]["oldest_age_seconds"] <= 5401


def test_a_message_scheduled_for_2030_is_scheduled_not_waiting():
    """The old dashboard counted it under 'waiting to send, last 24 hours'."""
    far = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    MessageFactory(status=Status.SCHEDULED, send_at=far)
    due = MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() - timedelta(seconds=30))
    now = timezone.now()
    assert sum(q["waiting"] for q in queues_now(now)) == 0
    scheduled = scheduled_now(now)
    assert scheduled["count"] == 2
    assert scheduled["next_due_at"] == due.send_at
    assert scheduled["overdue"] == 1


def test_counts_stop_at_the_cap_and_say_so():
    for _ in range(3):
        queued(Priority.HIGH, 1)
    assert capped_count(Message.objects.filter(status=Status.QUEUED), cap=2) == 2
    assert capped(COUNT_CAP) == "100,000+"
    assert capped(1234) == "1,234"
    assert age(42) == "42 s" and age(185) == "3 min 5 s" and age(7800) == "2 h 10 min"


def test_messages_in_flight_are_counted_by_channel():
    MessageFactory(status=Status.SENDING, channel="sms")
    MessageFactory(status=Status.SENDING, channel="sms")
    MessageFactory(status=Status.SENDING, channel="email", recipient="a@example.com")
    MessageFactory(status=Status.SENT)
    assert in_flight_now() == {"count": 3, "by_channel": {"sms": 2, "email": 1}}


def test_each_live_worker_says_what_it_is_sending():
    connection = django_rq.get_connection("default")
    messages = [queued(Priority.DEFAULT, 0) for _ in range(3)] + [
        queued(Priority.DEFAULT, 0, channel="email") for _ in range(1)
    ]
    busy = Worker(["high", "default", "low"], connection=connection, name="busy-worker")
    busy.register_birth()
    job = django_rq.get_queue("default").enqueue(SEND_JOB, [m.pk for m in messages])
    busy.prepare_execution(job)
    idle = Worker(["default"], connection=connection, name="idle-worker")
    idle.register_birth()
    try:
        workers = {w["name"]: w for w in workers_now()["workers"]}
    finally:
        busy.register_death()
        idle.register_death()
    assert workers["busy-worker"]["doing"] == "sending 3 messages of sms, 1 message of email"
    assert workers["busy-worker"]["queues"] == ["high", "default", "low"]
    assert workers["idle-worker"]["doing"] == "idle"


def test_redis_memory_says_no_limit_when_redis_has_none():
    memory = redis_memory_now()
    assert memory["ok"] and memory["used_bytes"] > 0
    info = django_rq.get_connection("default").info("memory")
    if not int(info["maxmemory"]):
        assert memory["max_bytes"] is None and memory["used_share"] is None


def test_failure_rate_is_failed_and_undelivered_of_what_reached_an_outcome():
    assert failure_share({"sent": 90, "failed": 10, "undelivered": 5}) == 0.15
    assert failure_share({}) is None


def test_the_snapshot_holds_dispatcher_providers_and_throughput(settings):
    settings.SMS_RATE_LIMIT = "30/second"
    settings.BREAKER_FAIL_MAX = 2
    Heartbeat(every=0).beat()
    ProviderBreaker("locmem").record([TransientDeliveryError("down"), TransientDeliveryError("down")])
    snapshot = now_build()
    assert snapshot["dispatcher"]["ok"] and snapshot["dispatcher"]["alive"] == 1
    providers = snapshot["providers"]["providers"]
    assert set(providers) == {"sms", "email", "whatsapp", "messenger"}
    assert providers["sms"]["breaker"]["state"] == "open"
    assert providers["sms"]["rate"]["limits"] == [{"limit": "30 per 1 second", "remaining": 30}]
    throughput = snapshot["throughput"]
    assert len(throughput["minutes"]) == 60
    assert set(throughput["sent"]) == {"sms", "email", "whatsapp", "messenger"}
    assert set(throughput["schedule_lag"]) >= {"p50", "p99", "count"}


def test_the_snapshot_is_built_once_per_few_seconds_for_every_process(settings):
    queued(Priority.HIGH, 1)
    first = now_snapshot()
    assert cache.get(CACHE_KEY) is not None
    queued(Priority.HIGH, 1)
    assert now_snapshot()["queues"][0]["waiting"] == first["queues"][0]["waiting"] == 1
    cache.delete(CACHE_KEY)
    assert now_snapshot()["queues"][0]["waiting"] == 2


# --- The panel on the admin index ----------------------------------------------------------------------------------


def test_the_panel_is_shown_only_to_staff_who_may_see_messages(client):
    user = staff(client)
    assert 'id="tidings-now"' not in client.get("/admin/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    page = client.get("/admin/").content.decode()
    assert 'id="tidings-now"' in page
    assert "Queue monitor" not in page  # no link without the monitor's permission


def test_a_viewer_sees_the_panel_with_its_chart_and_the_monitor_link(client):
    staff_roles_ensure()
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWERS))
    client.force_login(user)
    queued(Priority.HIGH, 12)
    MessageFactory(status=Status.SCHEDULED, send_at=datetime(2030, 1, 1, 9, 0, tzinfo=UTC))
    page = client.get("/admin/").content.decode()
    assert 'href="/admin/console/queues/"' in page
    assert "oldest 12 min" in page
    assert "next due 2030-01-01 09:00:00" in page
    assert "vendor/chartjs/chart.umd.min.js" in page and "console/now_chart.js" in page
    data = json.loads(re.search(r'<script id="tidings-now-data" type="application/json">(.*?)</script>', page).group(1))
    assert len(data["labels"]) == 60 and set(data["sent"]) == {"sms", "email", "whatsapp", "messenger"}
    assert "Deliveries, last 24 hours" not in page  # the old overview is gone


def test_what_the_panel_shows_is_escaped(client):
    staff(client, "view_message")
    connection = django_rq.get_connection("default")
    worker = Worker(["default"], connection=connection, name="<script>alert(1)</script>")
    worker.register_birth()
    try:
        page = client.get("/admin/").content.decode()
    finally:
        worker.register_death()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
