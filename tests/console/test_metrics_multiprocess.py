"""The observed metrics across processes (prometheus_client's multiprocess mode) and observe_many's arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ROOT

TOKEN = "metrics-test-token-0123456789"


def run_python(code: str, multiproc_dir: Path) -> None:
    """Run `code` in a fresh interpreter that keeps its metrics in `multiproc_dir`, as a web or worker process."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, check=True, timeout=60)


def scraped(client, name: str, **labels: str) -> float:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    wanted = set(labels.items())
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name == name and wanted <= set(sample.labels.items())
    )


@pytest.fixture
def multiproc_dir(settings, tmp_path):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    return tmp_path


@pytest.mark.django_db
def test_metrics_adds_up_what_two_processes_observed(client, multiproc_dir):
    for amounts in ([0.02, 0.3], [0.04, 7.0, 12.0]):
        run_python(
            f"""
            from deliveries import instruments
            calls = instruments.provider_call_seconds.labels("sms", "twilio")
            instruments.observe_many(calls, {amounts!r})
            instruments.webhook_events.labels("twilio", "delivered", "applied").inc()
            """,
            multiproc_dir,
        )

    labels = {"channel": "sms", "provider": "twilio"}
    assert scraped(client, "tidings_provider_call_seconds_count", **labels) == 5
    assert scraped(client, "tidings_provider_call_seconds_sum", **labels) == pytest.approx(19.36)
    assert scraped(client, "tidings_provider_call_seconds_bucket", le="0.05", **labels) == 2
    assert scraped(client, "tidings_provider_call_seconds_bucket", le="10.0", **labels) == 4
    assert scraped(client, "tidings_webhook_events_total", provider="twilio") == 2
    # The database's figures are there too, read by this process.
    assert scraped(client, "tidings_metrics_source_up", source="database") == 1


@pytest.mark.django_db
def test_an_rq_workers_work_horses_share_one_set_of_files_and_add_up(client, multiproc_dir):
    # Three jobs, each in a process forked from the worker, one after the other, as RQ runs them.
    run_python(
        """
        import os
        from deliveries import instruments
        instruments.share_files_across_work_horses()
        for job in range(3):
            pid = os.fork()
            if pid == 0:
                instruments.observe_many(instruments.end_to_end_seconds.labels("sms"), [0.5, 1.5])
                os._exit(0)
            os.waitpid(pid, 0)
        """,
        multiproc_dir,
    )

    [histogram_file] = [path.name for path in multiproc_dir.iterdir()]  # one for every job of the worker
    assert histogram_file.startswith("histogram_horse-of-")
    assert scraped(client, "tidings_message_end_to_end_seconds_count", channel="sms") == 6
    assert scraped(client, "tidings_message_end_to_end_seconds_sum", channel="sms") == pytest.approx(6.0)
