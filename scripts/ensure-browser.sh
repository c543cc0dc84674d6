#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing. Playwright drives this
# binary directly: its own browser downloads are never used.
# Safe to run repeatedly; prints what it installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
"$CHROMIUM" --version >/dev/null 2>&1 || { echo "chromium did not install" >&2; exit 1; }
