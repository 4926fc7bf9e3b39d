"""The Redis master dies mid-send: Sentinel promotes the replica and every process carries on with it, no restart.

A master, a replica and three sentinels run on loopback ports (down-after-milliseconds 1000, so a failover takes a
few seconds); two workers and a dispatcher are configured with REDIS_SENTINELS and REDIS_SENTINEL_MASTER only.
2,000 SMS are being sent to the fake Twilio when the master is SIGKILLed.
"""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.db import connection

from deliveries.models import Message, Status
from messaging_project.redis_connections import RedisConfig
from tests.redis_ha.conftest import needs_redis_server, redis_environment, use_redis
from tests.reliability.support import queue_sms, statuses, wait_until_settled
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.db_neutral, needs_redis_server]

COUNT = 2000


def message_ids_received(fake_twilio) -> Counter:
    """How many times the fake Twilio received each of our messages, by the id in its status callback URL."""
    return Counter(
        int(parse_qs(urlsplit(message["status_callback"]).query)["message"][0]) for message in fake_twilio.received
    )


def test_a_master_killed_mid_send_fails_over_and_every_message_goes_out_exactly_once(
    settings, sentinel_group, pipeline, fake_twilio, api
):
    if connection.vendor != "postgresql":
        pytest.skip("2,000 messages through two workers: run on PostgreSQL only (CI's second pass)")
    # Only how to talk to the master is in REDIS_URL; where it is, the sentinels say. Its host part is ignored.
    config = RedisConfig(
        url="redis://ignored-with-sentinel/0?socket_connect_timeout=1",
        sentinels=sentinel_group.addresses,
        sentinel_master=sentinel_group.master_name,
    )
    use_redis(settings, config)
    fake_twilio.latency = 0.05  # a provider answering in 50 ms keeps the send going for several seconds
    cache.set("web-was-here", "before", 60)  # this process (standing in for web) holds a connection to the master

    ids = queue_sms(COUNT)
    # A send rate (far above what is reached) makes the workers take rate-limit slots through Sentinel too.
    environment = {**redis_environment(config), "SMS_RATE_LIMIT": "10000/second"}
    workers = [pipeline.start_worker(**environment) for _ in range(2)]
    dispatcher = pipeline.start_dispatcher(**environment)

    wait_for(lambda: len(fake_twilio.received) >= 300, timeout=60, message="300 messages sent")
    old_port = sentinel_group.master.port
    sentinel_group.master.kill()
    killed_at = time.time()
    sent_at_kill = len(fake_twilio.received)
    assert sent_at_kill < COUNT * 0.8, "the send ended before the failover could be tested"

    wait_for(
        lambda: sentinel_group.master_port() == sentinel_group.replica.port,
        timeout=60,
        interval=0.05,
        message=f"the sentinels to promote the replica\n{sentinel_group.logs()}",
    )
    promoted_at = time.time()
    # Sending has resumed when a whole batch more than at the promotion has reached the provider, each sent by a
    # job a worker took from the new master (jobs in flight at the kill finished within the second that followed).
    at_promotion = len(fake_twilio.received)
    wait_for(lambda: len(fake_twilio.received) >= at_promotion + 40, timeout=60, message="sending to resume")
    resumed_at = time.time()

    try:
        settled = wait_until_settled(ids, timeout=120)
    except AssertionError:
        print(statuses(ids), pipeline.output()[-8000:], sentinel_group.logs())
        raise
    failover = promoted_at - killed_at
    resume = resumed_at - killed_at
    print(
        f"\nSentinel failover: master killed with {sent_at_kill} of {COUNT} sent; replica promoted after "
        f"{failover:.1f} s; sending resumed {resume:.1f} s after the kill ({resume - failover:.1f} s after the "
        f"promotion); all {COUNT} settled {time.time() - killed_at:.1f} s after the kill."
    )
    assert resume < 60

    # Every message delivered exactly once: counted at the provider by our own message id.
    received = message_ids_received(fake_twilio)
    assert settled == {Status.SENT: COUNT}, settled
    assert set(received) == set(ids)
    assert set(received.values()) == {1}, [pk for pk, times in received.items() if times > 1][:10]

    # Nobody was restarted: the same worker and dispatcher processes are still running, on the new master.
    assert [process.poll() for process in (*workers, dispatcher)] == [None, None, None], pipeline.output()[-5000:]
    assert sentinel_group.master_port() != old_port
    # The dispatcher logged the loss and went on. RQ's worker logs a traceback of its own when Redis vanishes while
    # it watches a job ("found an unhandled exception, quitting"): run_worker then waits for the new master.
    [dispatcher_log] = [log for process, log in pipeline.processes if process is dispatcher]
    assert "Traceback" not in dispatcher_log.read_text()

    # And the web side: the cache and the API (queue included) work on the new master in this same process.
    cache.set("web-was-here", "after", 60)
    assert cache.get("web-was-here") == "after"
    response = api.post("/api/v1/messages/", {"channel": "sms", "to": "+14155550199", "body": "after"}, format="json")
    assert response.status_code == 201, response.content
    wait_for(
        lambda: Message.objects.get(pk=response.json()["id"]).status == Status.SENT,
        timeout=30,
        message="the message made after the failover to be sent",
    )
