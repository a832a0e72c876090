// vitest setupFiles: a test file must leave the host's kernel as it found it.
// An ampguard run on the host as root in block.mode auto/ipset/nftables makes
// sets and raw PREROUTING rules (docs/enforcement.md); test/helpers/ampguard.ts
// removes them when the test stops it, but a test that spawns the CLI another
// way could leave them behind for every later run. This fails the file that
// did, naming what it left, and removes it so the next file starts clean.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';

const run = (cmd: string, args: string[]): string => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? `${r.stdout}` : '';
};

/** the host's ipset names, raw PREROUTING rules and nft tables, one line each */
function hostKernelState(): Set<string> {
  const lines = [
    ...run('ipset', ['list', '-n']).split('\n').map((l) => `ipset ${l}`),
    ...run('iptables', ['-w', '-t', 'raw', '-S', 'PREROUTING']).split('\n').map((l) => `iptables ${l}`),
    ...run('ip6tables', ['-w', '-t', 'raw', '-S', 'PREROUTING']).split('\n').map((l) => `ip6tables ${l}`),
    ...run('nft', ['list', 'tables']).split('\n').map((l) => `nft ${l}`),
  ];
  return new Set(lines.filter((l) => !/^\S+ $/.test(l)));
}

function remove(line: string): void {
  const [tool, ...rest] = line.split(' ');
  if ((tool === 'iptables' || tool === 'ip6tables') && rest[0] === '-A') run(tool, ['-w', '-t', 'raw', '-D', ...rest.slice(1)]);
  else if (tool === 'nft' && rest[0] === 'table') run('nft', ['delete', ...rest]);
}

const root = process.getuid?.() === 0;
let before = new Set<string>();

beforeAll(() => {
  if (root) before = hostKernelState();
});

afterAll(() => {
  if (!root) return;
  const left = [...hostKernelState()].filter((l) => !before.has(l));
  if (left.length === 0) return;
  // rules first: a set a rule refers to cannot be destroyed
  for (const line of left) remove(line);
  for (const line of left) if (line.startsWith('ipset ')) run('ipset', ['destroy', line.slice('ipset '.length)]);
  throw new Error(`this test file left kernel state on the host (now removed):\n  ${left.join('\n  ')}`);
});
