import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=1"
DEAD_QUEUES = {name: {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}


def test_live_answers_ok(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_database_redis_and_workers(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    # No worker runs during this test: reported, but not fatal.
    assert body["checks"]["workers"]["count"] == 0
    assert body["status"] == "degraded"


@override_settings(RQ_QUEUES=DEAD_QUEUES)
def test_ready_is_503_when_redis_is_unreachable(client):
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection refused" in body["checks"]["redis"]["error"]


@override_settings(RQ_QUEUES=DEAD_QUEUES, REDIS_URL=DEAD_REDIS)
def test_system_check_names_the_unreachable_redis():
    with pytest.raises(SystemCheckError, match=r"tidings.E001.*Redis is unreachable at redis://127.0.0.1:1/0"):
        call_command("check")


def test_system_check_passes_with_redis_up():
    call_command("check")
