#!/bin/sh
# Installs what ampguard needs from a fresh clone, skipping what is there.
#   npm run setup               the tour's Debian packages (pdns-recursor for the
#                               bundled backend, dnsutils for dig), then `npm ci`
#                               (its install step builds the native UDP addon, its
#                               prepare step dist/)
#   npm start / npm test        the same with --if-needed (only what is missing or
#                               stale: node_modules older than package-lock.json,
#                               no addon, dist/ older than src/ or test/), and for
#                               npm test --test: the packages the test suite runs
#                               (ipset, nft, kdig, prometheus, chromium, ...)
# Packages come from apt-get, with sudo when not root.
set -eu
cd "$(dirname "$0")/.."

if_needed=0
tests=0
for arg in "$@"; do
  case "$arg" in
    --if-needed) if_needed=1 ;;
    --test) tests=1 ;;
    *) echo "usage: $0 [--if-needed] [--test]" >&2; exit 2 ;;
  esac
done

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# command:package pairs, installed when the command is missing
wanted="dig:dnsutils pdns_recursor:pdns-recursor"
if [ "$tests" = 1 ]; then
  wanted="$wanted kdig:knot-dnsutils ipset:ipset iptables:iptables nft:nftables ip:iproute2 curl:curl git:git
    pkill:procps setpriv:util-linux prometheus:prometheus chromium:chromium g++:g++ make:make python3:python3 tcpdump:tcpdump
    nats-server:nats-server systemd-analyze:systemd"
fi
need=""
for pair in $wanted; do
  have "${pair%%:*}" || need="$need ${pair#*:}"
done
if [ -n "$need" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install$need (no apt-get here)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing$need"
  # a packaged recursor must not start its own service (it would prime its cache
  # from the internet); ampguard and the tests start every daemon themselves
  created_policy=0
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
  fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

stale() { # $1 missing, or older than any file under the rest
  target=$1; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -newer "$target" -type f 2>/dev/null | head -n 1)" ]
}

if [ "$if_needed" = 0 ] || stale node_modules/.package-lock.json package-lock.json; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
else
  if [ ! -e src/native/build/Release/ampguard_udp.node ]; then
    echo "setup: building the native UDP addon"
    node src/native/build.mjs
  fi
  if stale dist/src/cli/index.js src test tsconfig.json; then
    echo "setup: npm run build"
    npm run build --silent
  fi
fi
