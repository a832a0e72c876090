#!/bin/sh
# The addon's memory-safety run (docs/performance.md): an AddressSanitizer build of it,
# loaded through LD_PRELOAD=libasan (ASan must come first in a process that was not
# built with it) into every node process (through a `node` wrapper first on PATH; dig,
# the recursor and the other tools run as usual), under the UDP integration tests and
# the fuzz tests, every ampguard they start on udp_io native. Leak checking is off:
# Node itself frees little at exit; the quarantine is kept small so that the memory
# ceilings of the hostile tests still mean something.
set -eu
cd "$(dirname "$0")/../.."
node src/native/build.mjs --asan --strict >/dev/null
npm run --silent build
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "asan: libasan.so not found (gcc -print-file-name)" >&2; exit 1; }
export AMPGUARD_NATIVE_ADDON="$PWD/src/native/build-asan/build/Release/ampguard_udp.node"
export AMPGUARD_UDP_IO=native
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:quarantine_size_mb=16"
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$@"\n' "$libasan" "$(command -v node)" > "$bindir/node"
chmod +x "$bindir/node"
# a socket opened, fed and closed, then a normal exit: Node's environment cleanup
# runs the addon's teardown (what a test process ending by process.exit skips)
PATH="$bindir:$PATH" node src/native/asan-smoke.cjs
PATH="$bindir:$PATH" npx vitest run "$@" \
  test/fuzz test/integration/udp-io.test.ts test/integration/frontend.test.ts \
  test/integration/backends.test.ts test/integration/dual-stack.test.ts test/hostile/udp.test.ts \
  test/faults/upstream-errors.test.ts
