#!/usr/bin/env bash
# iproute2's `ip`, with which tests/reliability/test_many_hosts.py puts worker hosts in network namespaces.
# Does nothing when `ip` is there; otherwise installs iproute2 with apt-get (as root, or through sudo). Where it
# cannot, the test still runs, its hosts as process groups on 127.0.0.1 (it prints which ran): this never fails.
set -uo pipefail
if command -v ip >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "No \`ip\` command: the many-hosts test will run its hosts as process groups (install iproute2 as root for network namespaces)."
    exit 0
  fi
  sudo="sudo"
fi
echo "Installing iproute2 for the many-hosts test (network namespaces)..."
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends iproute2 >/dev/null; }; then
  echo "Could not install iproute2: the many-hosts test will run its hosts as process groups."
fi
exit 0
