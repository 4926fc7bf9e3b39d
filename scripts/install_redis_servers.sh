#!/usr/bin/env bash
# What the Redis failover and TLS tests (tests/redis_ha/) start themselves: redis-server (with TLS support, as Debian
# builds it) run as a master, a replica and, with --sentinel, three sentinels; and openssl, which makes their
# certificates. Does nothing when both are there; otherwise installs Debian's packages with apt-get (as root, or
# through sudo). Sentinel mode is part of redis-server itself, so the redis-sentinel package is not needed.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Install ${missing[*]} (apt-get) as root, then run the tests again." >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing ${missing[*]} for the Redis failover and TLS tests (once)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
