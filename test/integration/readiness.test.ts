// Start-up as a service manager sees it: systemd's readiness message (READY=1
// only once a reload can be taken, docs/operations.md) and a second instance on
// the same listen address refused instead of silently sharing the clients.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAmpguard, CLI } from '../helpers/ampguard.js';
import { startRecursor } from '../helpers/recursor.js';
import { startProc, stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';
import { probeClients } from '../helpers/probe-clients.js';
import { freePort } from '../helpers/ports.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  await stopAll();
});

// stands in for systemd's notification socket: prints each datagram on a line
const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
path = sys.argv[1]
s.bind("\\0" + path[1:] if path.startswith("@") else path)
print("listening", flush=True)
while True:
    print("got " + s.recv(4096).decode().replace("\\n", " "), flush=True)
`;

describe('service start-up', () => {
  for (const kind of ['path', 'abstract'] as const) {
    it(`says READY=1 on NOTIFY_SOCKET (${kind}) once a SIGHUP reloads instead of killing`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ampguard-notify-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const socket = kind === 'path' ? join(dir, 'notify') : `@ampguard-test-${process.pid}-${Date.now()}`;
      const listener = startProc('python3', ['-c', LISTENER, socket]);
      await listener.waitFor(/listening/);
      const rec = await startRecursor();
      cleanups.push(() => rec.close());
      const ag = await startAmpguard({
        wrap: ['env', `NOTIFY_SOCKET=${socket}`],
        config: { workers: 2, backends: [{ address: `127.0.0.1:${rec.port}` }], block: { mode: 'userspace' } },
      });
      cleanups.push(() => ag.stop());
      await listener.waitFor(new RegExp(`got READY=1 MAINPID=${ag.proc.child.pid}`), 10_000);
      // what systemd does with a queued reload as soon as the unit is ready
      ag.proc.child.kill('SIGHUP');
      await ag.proc.waitFor(/"msg":"config reloaded"/, 10_000);
      expect(ag.proc.child.exitCode).toBeNull();
      expect((await probeClients(ag.port, 20)).noerror).toBe(20);
      await ag.stop();
      await listener.waitFor(/got STOPPING=1/, 5000);
    });
  }

  it('refuses to start on a UDP address another process serves, and the first keeps all its clients', async () => {
    const rec = await startRecursor();
    cleanups.push(() => rec.close());
    const first = await startAmpguard({ config: { workers: 2, backends: [{ address: `127.0.0.1:${rec.port}` }], block: { mode: 'userspace' } } });
    cleanups.push(() => first.stop());
    // the same file but another metrics port: only the DNS address is shared
    const secondConfig = first.configPath.replace(/ampguard\.yaml$/, 'second.yaml');
    writeFileSync(secondConfig, readFileSync(first.configPath, 'utf8').replace(`127.0.0.1:${first.metricsPort}`, `127.0.0.1:${await freePort()}`));
    const again = startProc('node', [CLI, 'run', '--config', secondConfig]);
    const exit = await new Promise<number | null>((resolve) => again.child.once('exit', (code) => resolve(code)));
    expect(exit).not.toBe(0);
    expect(again.output()).toMatch(/E_START.*udp 127\.0\.0\.1:\d+ already served by another process/);
    const r = await poll(() => probeClients(first.port, 40), (x) => x.noerror === 40);
    expect(r.noerror).toBe(40);
  });
});
