#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the browser tests (tests/browser/), from Debian's packages.
# Does nothing when both are installed; otherwise installs them with apt-get (as root, or through sudo).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Install chromium and chromium-driver (apt-get) as root, then run the tests again." >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing chromium and chromium-driver for the browser tests (a minute or two, once)..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
