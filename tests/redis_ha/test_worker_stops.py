"""run_worker goes on when RQ's loop ends on a Redis error, so it must still know a stop when it is sent one, with a
plain REDIS_URL and with Sentinel."""

from __future__ import annotations

import inspect
import os
import signal
import time

import pytest
from redis.sentinel import SentinelManagedConnection

from deliveries.management.commands.run_worker import StopSignals
from messaging_project.redis_connections import RedisConfig
from tests.redis_ha.conftest import redis_environment
from tests.support import wait_for


@pytest.fixture
def own_handlers():
    """Handlers of our own for SIGTERM and SIGALRM, as RQ installs while it works; put back afterwards."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGALRM)}
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def test_a_sigterm_handled_by_someone_else_is_still_seen_as_a_stop(own_handlers):
    with StopSignals() as stops:
        os.kill(os.getpid(), signal.SIGALRM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops.received() is True


def test_other_signals_are_no_stop(own_handlers):
    with StopSignals() as stops:
        for _ in range(1000):
            os.kill(os.getpid(), signal.SIGALRM)
        assert stops.received() is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_running_worker_stops_on_sigterm(pipeline):
    worker = pipeline.start_worker()
    wait_for(lambda: "Listening on" in pipeline.output(), timeout=30, message="the worker to listen")
    worker.terminate()
    assert worker.wait(timeout=30) == 0, pipeline.output()[-3000:]
    assert "Lost Redis" not in pipeline.output()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.db_neutral
def test_a_worker_on_sentinel_stops_on_sigterm_too(pipeline, sentinel_group):
    # RQ's warm shutdown interrupts the idle worker's BLPOP from its signal handler: the connection must be closed,
    # not reused with BLPOP's answer still to come (messaging_project.redis_connections.ClosingSentinelConnection).
    config = RedisConfig(
        url="redis://sentinel/0", sentinels=sentinel_group.addresses, sentinel_master=sentinel_group.master_name
    )
    worker = pipeline.start_worker(**redis_environment(config))
    wait_for(lambda: "Listening on" in pipeline.output(), timeout=30, message="the worker to listen")
    time.sleep(1)  # into its BLPOP
    worker.terminate()
    assert worker.wait(timeout=30) == 0, pipeline.output()[-3000:]


def test_redis_py_still_leaves_sentinel_connections_open_after_an_interrupted_read():
    # When this fails, redis-py closes them itself: remove ClosingSentinelConnection and use its own classes.
    default = inspect.signature(SentinelManagedConnection.read_response).parameters["disconnect_on_error"].default
    assert default is False
