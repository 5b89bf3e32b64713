#!/usr/bin/env bash
# Install Debian's headless Chromium and its WebDriver for the report's browser test (tests/test_report*.py).
# Idempotent and quiet: does nothing when both binaries are already present.  Needs root (or sudo) and apt.
# Never downloads browsers from anywhere else (no Playwright/Selenium-manager downloads).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install_test_browser: not root and no sudo; cannot install chromium" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_browser: apt-get not found (not Debian/Ubuntu); install chromium and chromedriver yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
