"""/health/ready against real processes: ready while a dispatcher and a worker run, failing soon after the
dispatcher is killed (SIGKILL: no clean stop takes its beat away, so only its age can tell)."""

import signal

import pytest

from tests.support import process_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HEALTH_TOKEN = "health-token-for-tests"
MAX_AGE = 3.0
BEAT_EVERY = 0.5


def ready(client, **headers):
    response = client.get("/health/ready", **headers)
    return response.status_code, response.json()


def test_ready_turns_failing_within_the_heartbeat_limit_after_the_dispatcher_is_killed(client, settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    settings.DISPATCHER_HEARTBEAT_MAX_AGE = MAX_AGE
    env = process_env(DISPATCHER_HEARTBEAT_EVERY=str(BEAT_EVERY), DISPATCHER_HEARTBEAT_MAX_AGE=str(MAX_AGE))
    worker = start_manage("run_worker", env=env)
    dispatcher = start_manage("run_dispatcher", "--interval", "0.2", env=env)
    try:
        wait_for(lambda: ready(client) == (200, {"status": "ok"}), timeout=60, message="ready with both running")

        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(timeout=10)
        # Its last beat is at most BEAT_EVERY old now: failing once it passes MAX_AGE, so within the limit.
        wait_for(
            lambda: ready(client) == (503, {"status": "failing"}),
            timeout=MAX_AGE + BEAT_EVERY + 2,
            interval=0.1,
            message="readiness failing after the kill",
        )
        status, body = ready(client, HTTP_AUTHORIZATION=f"Bearer {HEALTH_TOKEN}")
        assert status == 503
        [failing] = body["failing"]
        assert failing.startswith("dispatcher: last beat ") and failing.endswith(" s ago (limit 3 s)")
        assert body["checks"]["workers"]["count"] == 1  # the worker still runs: only the dispatcher is named
    finally:
        outputs = [stop(worker), stop(dispatcher)]
    assert "Traceback" not in "".join(outputs), outputs


def test_a_killed_worker_is_listed_no_longer_than_its_ttl_says(clean_redis):
    # RQ keeps a worker's key for its TTL plus 60 seconds after its last renewal: run_worker passes WORKER_TTL on,
    # so a worker killed without a word drops off the lists within that, not RQ's default of 8 minutes.
    from rq import Worker

    worker = start_manage("run_worker", env=process_env(WORKER_TTL="20"))
    try:
        [listed] = wait_for(lambda: Worker.all(connection=clean_redis), timeout=30, message="the worker registered")
        assert 0 < clean_redis.ttl(listed.key) <= 20 + 60
    finally:
        worker.send_signal(signal.SIGKILL)
        stop(worker)
    assert 0 < clean_redis.ttl(listed.key) <= 20 + 60  # still listed, for the rest of its TTL at most
