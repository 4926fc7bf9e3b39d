#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the browser tests (tests/browser/), from Debian's packages.
# Does nothing when both are installed; otherwise installs them (scripts/apt_install.sh).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
exec "$(dirname "$0")/apt_install.sh" "the browser tests" chromium chromium-driver
