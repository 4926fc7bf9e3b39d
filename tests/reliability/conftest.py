"""Fixtures for the fault-injection scenarios: a pipeline of real worker and dispatcher processes."""

import pytest

from deliveries.circuit_breakers import ProviderBreaker
from tests.reliability.support import Pipeline


@pytest.fixture
def pipeline(fake_twilio, tmp_path):
    """Starts and stops the processes of one scenario; every process is stopped, even when the test fails."""
    ProviderBreaker("twilio").reset()
    running = Pipeline(fake_twilio, log_dir=tmp_path)
    yield running
    running.stop_all()
