#!/bin/sh
# `npm run setup`: the README's set-up command. Installs the two Debian packages
# the tour needs when they are missing (pdns-recursor for the bundled backend,
# dnsutils for dig; with sudo when not root), then the locked npm dependencies
# (`npm ci`, whose prepare step builds dist/). The test suite needs more
# packages: .ci/run installs them all.
set -eu
cd "$(dirname "$0")/.."

need=""
command -v dig >/dev/null 2>&1 || need="$need dnsutils"
if ! command -v pdns_recursor >/dev/null 2>&1 && [ ! -x /usr/sbin/pdns_recursor ]; then
  need="$need pdns-recursor"
fi
if [ -n "$need" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install$need (no apt-get here)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing$need"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
fi
npm ci --no-audit --no-fund
