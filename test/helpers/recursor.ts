// A real pdns_recursor for one test: its own config dir, socket dir and port,
// the example.test zone from deploy/ through auth-zones, and never a query
// leaving the host (dont-query everything, no security polling).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { onStopAll, startProc, type Proc } from './process.js';
import { freePort } from './ports.js';
import { digRaw } from './dig.js';

export const ZONE_FILE = resolve('deploy/pdns-recursor/example.test.zone');

export interface Recursor {
  readonly address: string;
  readonly port: number;
  readonly proc: Proc;
  stop(): Promise<void>;
  /** starts it again on the same port (after stop) */
  restart(): Promise<void>;
  /** stops it and removes its config dir */
  close(): Promise<void>;
  /** a counter of `rec_control get` (e.g. "questions": every query it received, health checks included) */
  stat(name: string): number;
}

export async function startRecursor(opts: { settings?: Record<string, string>; address?: string; port?: number; netns?: string } = {}): Promise<Recursor> {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(address));
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-rec-'));
  onStopAll(() => rmSync(dir, { recursive: true, force: true }));
  const settings: Record<string, string> = {
    'local-address': address,
    'local-port': String(port),
    'allow-from': '0.0.0.0/0, ::/0',
    'auth-zones': `example.test=${ZONE_FILE}`,
    'dont-query': '0.0.0.0/0, ::/0',
    'security-poll-suffix': '',
    // ampguard, not the recursor, must be what truncates in these tests
    'any-to-tcp': 'no',
    'udp-truncation-threshold': '65535',
    'daemon': 'no',
    'write-pid': 'no',
    'threads': '1',
    ...opts.settings,
  };
  writeFileSync(join(dir, 'recursor.conf'), Object.entries(settings).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  let proc: Proc;
  const launch = async (): Promise<void> => {
    proc = startProc('pdns_recursor', [`--config-dir=${dir}`, `--socket-dir=${dir}`, '--disable-syslog'], { netns: opts.netns });
    await proc.waitFor(/Enabled multiplexer|Launching worker threads|Done priming cache/, 15_000);
    // ready once it answers (a PROXY-only recursor answers nothing direct: then the log line is all we get)
    if (!settings['proxy-protocol-from']) {
      for (let i = 0; i < 50; i++) {
        const r = await digRaw(['-p', String(port), `@${address}`, 'example.test', 'SOA', '+tries=1', '+time=1'], opts.netns);
        if (/status: NOERROR/.test(r)) return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`recursor on ${address}:${port} does not answer:\n${proc.output().slice(-2000)}`);
    }
  };
  await launch();
  return {
    address,
    port,
    get proc() {
      return proc;
    },
    async stop() {
      await proc.stop();
    },
    restart: launch,
    async close() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    stat(name: string) {
      const out = execFileSync('rec_control', [`--socket-dir=${dir}`, `--config-dir=${dir}`, 'get', name], { encoding: 'utf8', timeout: 5000 });
      return Number(out.trim());
    },
  };
}
