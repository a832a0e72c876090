#!/bin/sh
# Starts the recursor of recursor.conf in the foreground, for the README's tour
# (run from the repository root). Needs the Debian package pdns-recursor.
set -eu
dir=$(mktemp -d /tmp/ampguard-recursor.XXXXXX)
pdns_recursor --config-dir=deploy/pdns-recursor --socket-dir="$dir" --disable-syslog "$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
trap 'exit 0' INT TERM
wait "$pid"
