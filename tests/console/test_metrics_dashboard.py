"""docs/grafana-dashboard.json: a dashboard Grafana can import, whose queries name only metrics /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
TOKEN = "metrics-test-token-0123456789"
# A metric name in PromQL: ours and django-rq's (functions, labels and keywords are not prefixed so).
METRIC_NAME = re.compile(r"\b((?:tidings|rq)_[a-z_]+)\b")


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # inside a collapsed row
    return found


def exposed_names(client) -> set[str]:
    """Every name a query may use: the families /metrics declares and their samples' names (_bucket, _total...)."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_input():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"]), panel["title"]


@pytest.mark.django_db
def test_every_query_of_the_dashboard_names_only_metrics_that_metrics_exposes(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    exposed = exposed_names(client)
    dashboard = json.loads(DASHBOARD.read_text())

    used = {
        (panel["title"], name)
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        for name in METRIC_NAME.findall(target["expr"])
    }

    assert used, "no query names a metric"
    assert sorted((title, name) for title, name in used if name not in exposed) == []
    titles = {title for title, _ in used}
    for wanted in ("tidings_messages_total", "tidings_provider_call_seconds_bucket", "tidings_queue_depth"):
        assert any(name == wanted for _, name in used), wanted
    assert len(titles) >= 8
