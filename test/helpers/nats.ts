// A real nats-server (the Debian package) on a free loopback port with its own
// JetStream store, for the fleet tests; stopped by the test's cleanup. It can
// be stopped and started again on the same port and store (an outage).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { onStopAll, startProc, type Proc } from './process.js';
import { freePort } from './ports.js';

export interface Nats {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** the server's process while it runs (the benchmark reads its CPU) */
  pid(): number | undefined;
}

/** on loopback of this namespace by default; `netns` and `address` put it elsewhere (the fleet's system test: a site namespace) */
export async function startNats(opts: { netns?: string; address?: string; port?: number } = {}): Promise<Nats> {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-nats-'));
  onStopAll(() => rmSync(dir, { recursive: true, force: true }));
  let proc: Proc | null = null;
  const start = async (): Promise<void> => {
    proc = startProc('nats-server', ['-a', address, '-p', String(port), '-js', '-sd', dir], { netns: opts.netns });
    await proc.waitFor(/Server is ready/, 15_000);
  };
  await start();
  return {
    url: `nats://${address}:${port}`,
    port,
    start,
    pid: () => proc?.child.pid,
    async stop() {
      await proc?.stop();
      proc = null;
    },
  };
}

/** A site key in a 0600 file (fleet.key_file). */
export function writeSiteKey(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-key-'));
  onStopAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'site.key');
  writeFileSync(path, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
  return path;
}
