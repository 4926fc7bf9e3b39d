#!/usr/bin/env bash
# What the Redis failover and TLS tests (tests/redis_ha/) start themselves: redis-server (with TLS support, as Debian
# builds it) run as a master, a replica and, with --sentinel, three sentinels; and openssl, which makes their
# certificates. Does nothing when both are there; otherwise installs Debian's packages (scripts/apt_install.sh).
# Sentinel mode is part of redis-server itself, so the redis-sentinel package is not needed.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the Redis failover and TLS tests" "${missing[@]}"
