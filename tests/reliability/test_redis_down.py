"""Redis unreachable while the API takes requests: the row is the truth, the message goes out when Redis is back."""

import pytest
from django.test import override_settings

from deliveries.models import Message, Status
from deliveries.services.dispatch import requeue_orphaned_messages
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_REDIS = "redis://127.0.0.1:1/0?socket_connect_timeout=1"
DEAD_QUEUES = {name: {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60} for name in ("high", "default", "low")}


def test_the_api_stores_messages_while_redis_is_down_and_they_go_out_once_it_is_back(api, client, fake_twilio):
    with override_settings(RQ_QUEUES=DEAD_QUEUES, REDIS_URL=DEAD_REDIS, HEALTH_TOKEN="health-token"):
        response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550100", "body": "hi"}, format="json")
        ready = client.get("/health/ready", HTTP_AUTHORIZATION="Bearer health-token")
    assert response.status_code == 201
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"]["ok"] is False
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == Status.QUEUED
    assert fake_twilio.received == []

    # Redis is back: the reconciler finds the message without a job and queues it; a worker sends it once.
    assert requeue_orphaned_messages(older_than=0) == 1
    run_burst_worker()
    assert requeue_orphaned_messages(older_than=0) == 0
    run_burst_worker()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert [m["to"] for m in fake_twilio.received] == ["+14155550100"]
