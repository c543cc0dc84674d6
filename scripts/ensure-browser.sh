#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing, and axe-core (the
# accessibility engine the tests inject into every page) from npm, pinned by
# tests/browser/package-lock.json. Playwright drives this Chromium directly: its own browser
# downloads are never used. Safe to run repeatedly; prints what it installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
"$CHROMIUM" --version >/dev/null 2>&1 || { echo "chromium did not install" >&2; exit 1; }

BROWSER_TESTS="$(dirname "$0")/../tests/browser"
if [ ! -f "$BROWSER_TESTS/node_modules/axe-core/axe.min.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "installing Debian's npm (for axe-core)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "installing axe-core"
  npm ci --prefix "$BROWSER_TESTS" --no-audit --no-fund --silent
fi
