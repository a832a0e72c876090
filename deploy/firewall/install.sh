#!/bin/sh
# Installs ampguard's stateless ruleset from its config, as root, once (and after
# every change of listen addresses, backends or ports). Review it first:
#   ampguard firewall --config /etc/ampguard/ampguard.yaml --format iptables | less
# Usage: deploy/firewall/install.sh [CONFIG] [iptables|nft]
set -eu
config=${1:-/etc/ampguard/ampguard.yaml}
format=${2:-iptables}
ampguard() { node "$(dirname "$0")/../../dist/src/cli/index.js" "$@"; }

# The sets must exist before a rule can name them.
ampguard firewall --config "$config" --format ipset | ipset restore
if [ "$format" = nft ]; then
  ampguard firewall --config "$config" --format nft > /tmp/ampguard.nft
  nft -c -f /tmp/ampguard.nft && nft -f /tmp/ampguard.nft
  rm -f /tmp/ampguard.nft
else
  ampguard firewall --config "$config" --format iptables > /tmp/ampguard.v4
  ampguard firewall --config "$config" --format ip6tables > /tmp/ampguard.v6
  iptables-restore --test < /tmp/ampguard.v4 && ip6tables-restore --test < /tmp/ampguard.v6
  iptables-restore < /tmp/ampguard.v4
  ip6tables-restore < /tmp/ampguard.v6
  rm -f /tmp/ampguard.v4 /tmp/ampguard.v6
  # to keep it across reboots (Debian): apt-get install iptables-persistent && netfilter-persistent save
fi
echo "ampguard firewall installed ($format)"
