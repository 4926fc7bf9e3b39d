"""run_worker goes on when RQ's loop ends on a Redis error, so it must still know a stop when it is sent one."""

from __future__ import annotations

import os
import signal

import pytest

from deliveries.management.commands.run_worker import StopSignals
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
