#!/usr/bin/env bash
# iproute2's `ip`, with which tests/reliability/test_many_hosts.py puts worker hosts in network namespaces.
# Does nothing when `ip` is there; otherwise installs iproute2 (scripts/apt_install.sh). Where it cannot, the test
# still runs, its hosts as process groups on 127.0.0.1 (it prints which ran): this never fails.
set -uo pipefail
if command -v ip >/dev/null; then
  exit 0
fi
if ! "$(dirname "$0")/apt_install.sh" "the many-hosts test (network namespaces)" iproute2; then
  echo "Could not install iproute2: the many-hosts test will run its hosts as process groups."
fi
exit 0
