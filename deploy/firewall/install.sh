#!/bin/sh
# Installs ampguard's stateless ruleset from its config, as root, once (and after
# every change of listen addresses, backends or ports; running it again is safe).
# Review it first:
#   ampguard firewall --config /etc/ampguard/ampguard.yaml --format iptables | less
# Usage: deploy/firewall/install.sh [CONFIG] [iptables|nft]
#
# What it changes, and only that (docs/operations.md, "Firewall"):
#   iptables: ampguard's own chains AMPGUARD-PREROUTING, AMPGUARD-OUTPUT (raw) and
#     AMPGUARD-INPUT (filter), loaded with `iptables-restore --noflush`, so every
#     other rule stays; one jump to each (added only when missing); INPUT's policy
#     DROP; the four ipsets the rules name (created only when missing).
#   nft: the table inet ampguard_firewall, replaced whole in one transaction, and
#     the enforcement table inet ampguard (its sets and members kept). No ipset.
# Nothing is written to disk: the rulesets go through pipes.
set -eu
config=${1:-/etc/ampguard/ampguard.yaml}
format=${2:-iptables}
here=$(cd "$(dirname "$0")" && pwd)
# AMPGUARD: the ampguard command to use; by default the one of this package
ampguard() {
  if [ -n "${AMPGUARD:-}" ]; then "$AMPGUARD" "$@"; else node "$here/../../dist/src/cli/index.js" "$@"; fi
}

case "$format" in
  nft)
    rules=$(ampguard firewall --config "$config" --format nft)
    printf '%s\n' "$rules" | nft -c -f -
    printf '%s\n' "$rules" | nft -f -
    ;;
  iptables)
    # the sets must exist before a rule can name them (-exist: kept when they do)
    ampguard firewall --config "$config" --format ipset | ipset restore
    v4=$(ampguard firewall --config "$config" --format iptables)
    v6=$(ampguard firewall --config "$config" --format ip6tables)
    printf '%s\n' "$v4" | iptables-restore --noflush --test
    printf '%s\n' "$v6" | ip6tables-restore --noflush --test
    for tool in iptables ip6tables; do
      if [ "$tool" = iptables ]; then rules=$v4; else rules=$v6; fi
      # --noflush: only the chains the input declares are emptied and refilled
      printf '%s\n' "$rules" | "$tool-restore" --noflush
      # the jumps, once each (these three lines match IPTABLES_JUMPS in src/firewall/iptables.ts)
      "$tool" -w -t raw -C PREROUTING -j AMPGUARD-PREROUTING 2>/dev/null || "$tool" -w -t raw -I PREROUTING 1 -j AMPGUARD-PREROUTING
      "$tool" -w -t raw -C OUTPUT -j AMPGUARD-OUTPUT 2>/dev/null || "$tool" -w -t raw -I OUTPUT 1 -j AMPGUARD-OUTPUT
      "$tool" -w -t filter -C INPUT -j AMPGUARD-INPUT 2>/dev/null || "$tool" -w -t filter -A INPUT -j AMPGUARD-INPUT
      # last, once our accepts are in place: what nothing accepted is dropped
      "$tool" -w -P INPUT DROP
    done
    # to keep it across reboots (Debian): apt-get install iptables-persistent && netfilter-persistent save
    ;;
  *)
    echo "usage: $0 [CONFIG] [iptables|nft]" >&2
    exit 2
    ;;
esac
echo "ampguard firewall installed ($format)"
