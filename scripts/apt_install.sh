#!/usr/bin/env bash
# Installs Debian packages for a test's needs with apt-get, as root or through sudo: the one place the project's
# install scripts (install_browser.sh, install_iproute2.sh, install_redis_servers.sh) do it.
#   scripts/apt_install.sh "WHAT FOR" PACKAGE...
# Exits non-zero, saying what to run by hand, when it cannot (not root and no sudo, or apt-get failed).
set -euo pipefail
purpose=$1
shift
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Install $* (apt-get) as root for $purpose, then run the tests again." >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing $* for $purpose (once)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
