// What cannot start says so and does not start: an explicit kernel block.mode
// without the privileges it needs (the capability named), and a listener on a
// port below 1024 without CAP_NET_BIND_SERVICE (the address and the capability
// named). Run without any capability, in a namespace of their own. The user
// stays root: the checkout may sit under a private (0700) directory that nobody
// cannot read, as a fresh clone in CI does, and without capabilities root has no
// more right to a socket or the kernel set than any other user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createHosts, kernelUnavailable, type Hosts } from '../helpers/netns.js';
import { CLI } from '../helpers/ampguard.js';

const unavailable = kernelUnavailable();
const NO_CAPS = ['setpriv', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'];
let hosts: Hosts | undefined;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ampguard-refuse-'));
  chmodSync(dir, 0o755);
});
afterAll(() => {
  hosts?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** `ampguard run` as it ends: it must end (refuse), not start */
function run(name: string, config: Record<string, unknown>, as: string[] = NO_CAPS): { status: number | null; stderr: string } {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify({ backends: [{ address: '127.0.0.1:5300' }], ...config }));
  chmodSync(path, 0o644);
  const r = spawnSync('ip', ['netns', 'exec', hosts!.server, ...as, 'node', CLI, 'run', '--config', path], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe.skipIf(unavailable !== null)('start-up refusals', () => {
  beforeAll(() => {
    hosts = createHosts();
  });

  for (const mode of ['ipset', 'nftables']) {
    it(`block.mode ${mode} without CAP_NET_ADMIN refuses to start and names the capability`, () => {
      const r = run(`mode-${mode}`, { listen: { udp: ['127.0.0.1:5353'], tcp: ['127.0.0.1:5353'] }, block: { mode } });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain('E_START');
      expect(r.stderr).toContain(`block.mode ${mode} cannot start`);
      expect(r.stderr).toContain('CAP_NET_ADMIN');
      expect(r.stderr).toContain('block.mode: auto');
    });
  }

  it('block.mode ipset refuses as root too when the kernel set cannot be made (a set of that name and another type)', () => {
    hosts!.run(hosts!.server, 'ipset', ['create', 'refused-set', 'hash:net']);
    const r = run('mode-conflict', { listen: { udp: ['127.0.0.1:5354'], tcp: ['127.0.0.1:5354'] }, block: { mode: 'ipset', set: 'refused-set' } }, []);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('block.mode ipset cannot start');
  });

  it('a listener on port 53 without CAP_NET_BIND_SERVICE names the address and the capability', () => {
    const r = run('bind', { listen: { udp: ['127.0.0.1:53'], tcp: ['127.0.0.1:53'] }, block: { mode: 'userspace' } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot listen on (udp|tcp) 127\.0\.0\.1:53: EACCES/);
    expect(r.stderr).toContain('CAP_NET_BIND_SERVICE');
  });

  it('a port in use names the address and who to ask', () => {
    const r = run('inuse', { listen: { udp: ['127.0.0.1:5355'], tcp: ['127.0.0.1:5355'] }, block: { mode: 'userspace' }, metrics: { listen: '127.0.0.1:5355' } }, []);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot listen on (tcp|http) 127\.0\.0\.1:5355: EADDRINUSE/);
  });
});
