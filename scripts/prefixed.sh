#!/usr/bin/env bash
# scripts/prefixed.sh LABEL COMMAND...: run COMMAND with every line it prints prefixed "[LABEL] ", and exit with its
# status. `make test` runs the SQLite and PostgreSQL suites side by side through it, so that both show progress as
# they go and each line says which suite it comes from.
set -uo pipefail
label=$1
shift
"$@" 2>&1 | sed -u "s/^/[$label] /"
exit "${PIPESTATUS[0]}"
