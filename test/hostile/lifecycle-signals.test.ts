// Signals at awkward moments: a SIGHUP while ampguard is still starting (it
// used to kill the process) is applied once started; a SIGTERM with a
// half-sent HTTP request and a keep-alive connection open (it used to take
// 79 s) closes them and every listener, and the process leaves.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, startAmpguard } from '../helpers/ampguard.js';
import { freePort } from '../helpers/ports.js';
import { onStopAll, startProc, stopAll, type Proc } from '../helpers/process.js';
import { until } from '../helpers/blast.js';
import { waitFor } from '../helpers/poll.js';

const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await stopAll();
});

/** true while the process has a handler (not the default action) for SIGHUP, from /proc */
function catchesSighup(pid: number): boolean {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('SigCgt:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

// every millisecond: the window between the handlers and READY=1 is short
const poll = (check: () => boolean, timeoutMs: number): Promise<boolean> => waitFor(check, timeoutMs, 1);

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function configFile(extra: Record<string, unknown>): Promise<{ path: string; port: number; metricsPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-life-'));
  onStopAll(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const metricsPort = await freePort();
  const path = join(dir, 'ampguard.yaml');
  const config = {
    listen: { udp: [`127.0.0.1:${port}`], tcp: [`127.0.0.1:${port}`] },
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    backends: [{ address: `127.0.0.1:${await freePort()}` }],
    block: { mode: 'userspace' },
    ...extra,
  };
  writeFileSync(path, stringify(config));
  return { path, port, metricsPort };
}

/** a connection that sent half a request and will never finish it */
function halfRequest(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      resolve(s);
    });
    sockets.push(s);
    s.on('error', () => undefined);
    s.once('error', reject);
  });
}

/** a keep-alive connection that has had one answer and stays open */
function keepAlive(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`));
    sockets.push(s);
    s.on('error', () => undefined);
    s.once('error', reject);
    s.once('data', () => resolve(s));
  });
}

const closed = (s: net.Socket): boolean => s.destroyed || s.closed;

async function stopWithSlowClients(proc: Proc, port: number, metricsPort: number): Promise<void> {
  const slow = await halfRequest(metricsPort);
  const kept = await keepAlive(metricsPort);
  expect(closed(kept)).toBe(false);
  proc.child.kill('SIGTERM');
  expect(await until(() => proc.child.exitCode !== null, 5000)).toBe(true);
  expect(proc.child.exitCode).toBe(0);
  expect(await until(() => closed(slow) && closed(kept), 2000)).toBe(true);
  expect(await connects(metricsPort)).toBe(false);
  expect(await connects(port)).toBe(false);
}

describe('lifecycle', () => {
  it('takes a SIGHUP sent while starting and applies it once started', async () => {
    const { path } = await configFile({});
    const proc = startProc('node', [CLI, 'run', '--config', path]);
    const pid = proc.child.pid as number;
    expect(await poll(() => catchesSighup(pid) || proc.child.exitCode !== null, 10_000)).toBe(true);
    const outputAtSignal = proc.output();
    proc.child.kill('SIGHUP');
    await proc.waitFor(/"msg":"config reloaded"/, 15_000);
    // the signal came before the start was over, and was applied after it
    expect(outputAtSignal).not.toMatch(/ampguard started/);
    const out = proc.output();
    expect(out.indexOf('ampguard started')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('config reloaded')).toBeGreaterThan(out.indexOf('ampguard started'));
    expect(proc.child.exitCode).toBeNull();
    expect(proc.child.signalCode).toBeNull();
  });

  it('SIGTERM closes half-sent and keep-alive HTTP connections and every listener, and leaves', async () => {
    const ag = await startAmpguard({ config: { backends: [{ address: `127.0.0.1:${await freePort()}` }], block: { mode: 'userspace' } } });
    await stopWithSlowClients(ag.proc, ag.port, ag.metricsPort);
    expect(ag.proc.output()).toMatch(/"msg":"ampguard stopped"/);
  });

  it('the same with workers', async () => {
    const ag = await startAmpguard({ config: { workers: 2, backends: [{ address: `127.0.0.1:${await freePort()}` }], block: { mode: 'userspace' } } });
    await stopWithSlowClients(ag.proc, ag.port, ag.metricsPort);
  });
});

