// workers: 2 (Node cluster): one budget per client however the kernel spreads
// its datagrams over the workers, a block made by one worker drops the client
// in all of them, metrics summed over workers, a dead worker replaced with the
// primary's configuration (never the file on disk).
import { proofHeader } from '../helpers/control.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { dig } from '../helpers/dig.js';
import { until } from '../helpers/blast.js';

const BLAST = resolve('test/helpers/udp-blast.mjs');
let rec: Recursor;
let ag: Ampguard;

function blast(src: string, count: number, name = 'medium.example.test', interval = 1): { sent: number; received: number } {
  return JSON.parse(execFileSync('node', [BLAST, '127.0.0.1', String(ag.port), src, String(count), name, 'TXT', '1232', String(interval), '400'], { encoding: 'utf8' }));
}

const withToken = async (method: string, url: string): Promise<Record<string, string>> =>
  ({ authorization: await proofHeader(ag.metricsPort, join(dirname(ag.configPath), 'ampguard.token'), method, new URL(url).pathname + new URL(url).search) });

/** metrics reach the primary as snapshots every second: poll for the value */
async function metricBecomes(name: string, value: number): Promise<number> {
  let last = NaN;
  await until(async () => (last = await ag.metric(name)) === value, 5000);
  return last;
}

/** the value once it has stopped changing for longer than a snapshot period (no traffic in flight) */
async function settled(name: string): Promise<number> {
  let last = await ag.metric(name);
  let since = Date.now();
  await until(async () => {
    const now = await ag.metric(name);
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since > 1500;
  }, 10_000);
  return last;
}

function workerPids(): number[] {
  const out = execFileSync('pgrep', ['-P', String(ag.proc.child.pid)], { encoding: 'utf8' });
  return out.trim().split('\n').filter(Boolean).map(Number);
}

beforeAll(async () => {
  ({ rec, ag } = await startPair({
    workers: 2,
    health_check: { qname: 'example.test', qtype: 'SOA', interval_ms: 200 },
    block: { mode: 'userspace', timeout: 60 },
    // block as soon as over budget (the TC-first ladder has its own tests)
    policy: { ladder: { enabled: false } },
  }));
});
afterAll(() => stopPair({ rec, ag }));

describe('cluster', () => {
  it('runs the configured number of workers', () => {
    expect(workerPids()).toHaveLength(2);
    expect(ag.proc.output()).toMatch(/"workers":2/);
  });

  it('sums counters over the workers', async () => {
    const before = await settled('ampguard_queries_total{proto="udp"}');
    const r = blast('127.0.0.20', 200, 'www.example.test', 0);
    expect(r.received).toBe(200);
    expect(await metricBecomes('ampguard_queries_total{proto="udp"}', before + 200)).toBe(before + 200);
  });

  it('holds a client to one budget across workers, within one burst, and blocks it in every worker', async () => {
    // ~930-byte replies against a 12320-byte bucket: 13 fit; a second worker may admit one more burst
    const r = blast('127.0.0.21', 60, 'medium.example.test', 1);
    expect(r.received).toBeGreaterThanOrEqual(13);
    expect(r.received).toBeLessThanOrEqual(26);
    expect(await until(async () => (await ag.metric('ampguard_blocked_clients')) === 1, 2000)).toBe(true);
    expect(await ag.metric('ampguard_blocks_total{mode="userspace"}')).toBe(1);
    const blockedBefore = await settled('ampguard_dropped_total{reason="blocked"}');
    expect(blast('127.0.0.21', 40, 'www.example.test', 0).received).toBe(0);
    expect(await metricBecomes('ampguard_dropped_total{reason="blocked"}', blockedBefore + 40)).toBe(blockedBefore + 40);
    // the kernel spread those 40 over both workers, and both dropped them
    expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '-b', '127.0.0.22'])).status).toBe('NOERROR');
  });

  it('blocks by hand in every worker through the primary', async () => {
    const url = `http://127.0.0.1:${ag.metricsPort}/api/blocks?address=127.0.0.23`;
    expect((await fetch(url, { method: 'POST', headers: await withToken('POST', url) })).status).toBe(200);
    // the block reaches the workers over IPC: poll until both drop the client
    expect(await until(() => blast('127.0.0.23', 5, 'www.example.test', 0).received === 0, 5000)).toBe(true);
    expect(blast('127.0.0.23', 30, 'www.example.test', 0).received).toBe(0);
    expect((await fetch(url, { method: 'DELETE', headers: await withToken('DELETE', url) })).status).toBe(200);
    expect(await until(() => blast('127.0.0.23', 5, 'www.example.test', 0).received === 5, 5000)).toBe(true);
    expect(blast('127.0.0.23', 30, 'www.example.test', 0).received).toBe(30);
  });

  it("replaces a worker that dies with the primary's config, even when the file on disk became invalid, and keeps the sums", async () => {
    const total = 'ampguard_queries_total{proto="udp"}';
    // the last snapshots in, so the dead worker's count is in the total
    const before = await settled(total);
    const good = readFileSync(ag.configPath, 'utf8');
    writeFileSync(ag.configPath, 'backend_timeout_ms: -5\nlisten: [\n');
    try {
      const [first] = workerPids();
      process.kill(first as number, 'SIGKILL');
      await ag.proc.waitFor(/replacement worker ready/, 10_000);
      expect(workerPids()).toHaveLength(2);
      expect(workerPids()).not.toContain(first);
      // one death, no crash loop: the replacement never read the broken file
      expect(ag.proc.output().match(/worker died, starting another/g)).toHaveLength(1);
      expect(ag.proc.output()).not.toMatch(/worker cannot start/);
      expect(blast('127.0.0.24', 50, 'www.example.test', 0).received).toBe(50);
      // the dead worker's counts stay in the total: it only grows by what was sent since
      expect(await metricBecomes(total, before + 50)).toBe(before + 50);
      // the new worker learned the blocks made before it started
      expect(blast('127.0.0.21', 20, 'www.example.test', 0).received).toBe(0);
    } finally {
      writeFileSync(ag.configPath, good);
    }
  });
});
