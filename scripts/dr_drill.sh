#!/usr/bin/env bash
# Backup and recovery drills (docs/operations.md, "Backups and drills"): kills Redis, restarts PostgreSQL, dumps
# and restores the database, takes the provider down and kills a worker, each mid-run, on servers of its own,
# and prints the recovery time and the messages lost or sent twice. `scripts/dr_drill.sh --help` for the options.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m benchmarks.dr_drill "$@"
