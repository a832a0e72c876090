#!/bin/sh
# Starts the recursor of recursor.conf in the foreground, for the README's tour
# (run from the repository root). Needs the Debian package pdns-recursor.
set -eu
dir=$(mktemp -d /tmp/ampguard-recursor.XXXXXX)
trap 'rm -rf "$dir"' EXIT
exec pdns_recursor --config-dir=deploy/pdns-recursor --socket-dir="$dir" --disable-syslog "$@"
