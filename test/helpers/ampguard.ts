// ampguard itself, started as a user starts it (the built CLI with a YAML
// config file), on free ports, stopped by the test's cleanup.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { onStopAll, startProc, type Proc } from './process.js';
import { freePort } from './ports.js';
import { removeHostKernelState } from './host-kernel.js';

export const CLI = resolve('dist/src/cli/index.js');

export interface Ampguard {
  readonly port: number;
  readonly metricsPort: number;
  readonly configPath: string;
  readonly proc: Proc;
  metrics(): Promise<Map<string, number>>;
  metric(name: string): Promise<number>;
  /** rewrites the config file (for SIGHUP tests) */
  writeConfig(config: Record<string, unknown>): void;
  stop(): Promise<void>;
}

export interface AmpguardOptions {
  /** the config, minus listen and metrics, which the helper fills in */
  config: Record<string, unknown>;
  address?: string;
  netns?: string;
  port?: number;
  /** a command that runs ampguard's node command line, e.g. setpriv with reduced privileges */
  wrap?: string[];
  /** the CLI to run instead of the checkout's dist (e.g. an installed package's, see package.ts) */
  cli?: string;
}

export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export async function startAmpguard(opts: AmpguardOptions): Promise<Ampguard> {
  const address = opts.address ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(address));
  const metricsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-cfg-'));
  onStopAll(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755); // readable by an unprivileged ampguard (wrap)
  const configPath = join(dir, 'ampguard.yaml');
  const host = address.includes(':') ? `[${address}]` : address;
  const full = (config: Record<string, unknown>): Record<string, unknown> => ({
    listen: { udp: [`${host}:${port}`], tcp: [`${host}:${port}`] },
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    log: { level: 'info' },
    // AMPGUARD_UDP_IO=native|dgram runs the whole suite on one UDP I/O mode (docs/performance.md)
    ...(process.env.AMPGUARD_UDP_IO ? { udp_io: process.env.AMPGUARD_UDP_IO } : {}),
    ...config,
  });
  writeFileSync(configPath, stringify(full(opts.config)));
  const argv = ['node', opts.cli ?? CLI, 'run', '--config', configPath];
  const [cmd, ...args] = opts.wrap ? [...opts.wrap, ...argv] : argv;
  const proc = startProc(cmd as string, args, { netns: opts.netns });
  // on the host, the kernel sets and rules it makes as root go with it, even when the test fails
  const blockSet = (opts.config.block as { set?: string } | undefined)?.set;
  const cleanKernel = (): void => {
    if (!opts.netns) removeHostKernelState(port, blockSet);
  };
  onStopAll(cleanKernel);
  await proc.waitFor(/"msg":"ampguard started"/, 20_000);
  const metrics = async (): Promise<Map<string, number>> => {
    const cmd = opts.netns ? await fetchInNetns(opts.netns, metricsPort) : await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return parseMetrics(cmd);
  };
  return {
    port,
    metricsPort,
    configPath,
    proc,
    metrics,
    async metric(name: string) {
      return (await metrics()).get(name) ?? NaN;
    },
    writeConfig(config) {
      writeFileSync(configPath, stringify(full(config)));
    },
    async stop() {
      await proc.stop();
      cleanKernel();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function fetchInNetns(netns: string, port: number): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', netns, 'curl', '-s', `http://127.0.0.1:${port}/metrics`], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}
