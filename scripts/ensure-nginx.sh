#!/usr/bin/env bash
# Install Debian's nginx for the front-door tests when it is missing. The tests run the binary
# themselves (a foreground child with its own config, pid and temp paths on a free loopback
# port); the package's own service is not used.
# Safe to run repeatedly; prints what it installed.
set -euo pipefail

NGINX=/usr/sbin/nginx

if [ ! -x "$NGINX" ]; then
  echo "installing Debian's nginx"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
"$NGINX" -v >/dev/null 2>&1 || { echo "nginx did not install" >&2; exit 1; }
