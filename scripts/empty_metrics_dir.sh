#!/bin/sh
# Before a process of a Procfile platform starts (one container per process, so one PROMETHEUS_MULTIPROC_DIR each):
# empty its metrics directory, whose files from an earlier run would be added to this one's. Does nothing when
# PROMETHEUS_MULTIPROC_DIR is unset. Where web and workers share one host and one directory, empty it once before
# starting them all instead (docs/metrics.md).
set -eu
[ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ] || exit 0
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
