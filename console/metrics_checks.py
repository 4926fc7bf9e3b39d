"""`manage.py check` on the metrics settings: a multiprocess directory that is not one, an exporter that would show
nothing; `check --deploy` warns while /metrics is off (no METRICS_TOKEN)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks


@checks.register("tidings")
def check_metrics_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if directory and not os.path.isdir(directory):
        problems.append(
            checks.Error(
                f"PROMETHEUS_MULTIPROC_DIR is {directory!r}, which is not a directory: /metrics would fail.",
                hint="Create it (empty) before starting the web and worker processes of this host (docs/metrics.md).",
                id="tidings.E051",
            )
        )
    if settings.METRICS_PORT and not directory:
        problems.append(
            checks.Error(
                "METRICS_PORT is set without PROMETHEUS_MULTIPROC_DIR: the worker's exporter would show nothing, "
                "because each job runs in a process of its own.",
                hint="Set PROMETHEUS_MULTIPROC_DIR to an empty directory on this host (docs/metrics.md).",
                id="tidings.E052",
            )
        )
    return problems


@checks.register("tidings", deploy=True)
def check_metrics_are_on(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.METRICS_TOKEN:
        return []
    return [
        checks.Warning(
            "METRICS_TOKEN is not set: /metrics answers 404, so Prometheus sees nothing of this site.",
            hint="Set METRICS_TOKEN to a long random string and give it to Prometheus as its bearer token.",
            id="tidings.W053",
        )
    ]
