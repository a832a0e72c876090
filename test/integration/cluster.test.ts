// workers: 2 (Node cluster): one budget per client however the kernel spreads
// its datagrams over the workers, a block made by one worker drops the client
// in all of them, metrics summed over workers, a dead worker replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
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

function workerPids(): number[] {
  const out = execFileSync('pgrep', ['-P', String(ag.proc.child.pid)], { encoding: 'utf8' });
  return out.trim().split('\n').filter(Boolean).map(Number);
}

beforeAll(async () => {
  ({ rec, ag } = await startPair({
    workers: 2,
    health_check: { qname: 'example.test', qtype: 'SOA', interval_ms: 200 },
    block: { mode: 'userspace', timeout: 60 },
  }));
});
afterAll(() => stopPair({ rec, ag }));

describe('cluster', () => {
  it('runs the configured number of workers', () => {
    expect(workerPids()).toHaveLength(2);
    expect(ag.proc.output()).toMatch(/"workers":2/);
  });

  it('sums counters over the workers', async () => {
    const before = await ag.metric('ampguard_queries_total{proto="udp"}');
    const r = blast('127.0.0.20', 200, 'www.example.test', 0);
    expect(r.received).toBe(200);
    expect(await ag.metric('ampguard_queries_total{proto="udp"}')).toBe(before + 200);
  });

  it('holds a client to one budget across workers, within one burst, and blocks it in every worker', async () => {
    // ~930-byte replies against a 12320-byte bucket: 13 fit; a second worker may admit one more burst
    const r = blast('127.0.0.21', 60, 'medium.example.test', 1);
    expect(r.received).toBeGreaterThanOrEqual(13);
    expect(r.received).toBeLessThanOrEqual(26);
    expect(await until(async () => (await ag.metric('ampguard_blocked_clients')) === 1, 2000)).toBe(true);
    expect(await ag.metric('ampguard_blocks_total{mode="userspace"}')).toBe(1);
    const blockedBefore = await ag.metric('ampguard_dropped_total{reason="blocked"}');
    expect(blast('127.0.0.21', 40, 'www.example.test', 0).received).toBe(0);
    expect(await ag.metric('ampguard_dropped_total{reason="blocked"}')).toBe(blockedBefore + 40);
    // the kernel spread those 40 over both workers, and both dropped them
    expect((await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '-b', '127.0.0.22'])).status).toBe('NOERROR');
  });

  it('blocks by hand in every worker through the primary', async () => {
    const res = await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks?address=127.0.0.23`, { method: 'POST' });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(blast('127.0.0.23', 30, 'www.example.test', 0).received).toBe(0);
    await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks?address=127.0.0.23`, { method: 'DELETE' });
    await new Promise((r) => setTimeout(r, 100));
    expect(blast('127.0.0.23', 30, 'www.example.test', 0).received).toBe(30);
  });

  it('replaces a worker that dies and keeps answering', async () => {
    const [first] = workerPids();
    process.kill(first as number, 'SIGKILL');
    expect(await until(() => workerPids().length === 2 && !workerPids().includes(first as number), 5000)).toBe(true);
    await ag.proc.waitFor(/worker died, starting another/);
    expect(blast('127.0.0.24', 50, 'www.example.test', 0).received).toBe(50);
    // the new worker learned the blocks made before it started
    expect(blast('127.0.0.21', 20, 'www.example.test', 0).received).toBe(0);
  });
});
