// The ladder with workers: 2. A stub's TCP follow-up may land on the other
// worker than the one whose UDP answer put its prefix on rung 2, so the workers
// share the follow-ups they see (docs/defence.md, "With workers"). With a
// follow-up share of 0.8, a NAT whose every TC is retried over TCP is held on
// rung 2 only when the follow-ups are shared; a spoofed source, which never
// comes back, is blocked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { until } from '../helpers/blast.js';

const TRAFFIC = resolve('test/helpers/ladder-traffic.mjs');
let rec: Recursor;
let ag: Ampguard;

interface Totals {
  lookups: number;
  full: number;
  viaTcp: number;
  tc: number;
}

// asynchronous: a synchronous child would stall this process's HTTP client past the server's keep-alive
async function traffic(mode: string, seconds: number, qps: number, src: string): Promise<Totals> {
  const { stdout } = await promisify(execFile)('node', [TRAFFIC, mode, '127.0.0.1', String(ag.port), String(seconds), String(qps), src], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Totals;
}

async function blockedPrefixes(): Promise<string[]> {
  const r = (await (await fetch(`http://127.0.0.1:${ag.metricsPort}/api/blocks`)).json()) as { blocks: { prefix: string }[] };
  return r.blocks.map((b) => b.prefix);
}

beforeAll(async () => {
  ({ rec, ag } = await startPair({
    workers: 2,
    block: { mode: 'userspace' },
    policy: { ladder: { followup_share: 0.8 }, large_response: { aggregate: { enabled: false } } },
  }));
});
afterAll(async () => {
  if (process.env.AG_DEBUG) console.log(ag.proc.output().slice(-5000));
  await stopPair({ rec, ag });
});

describe('the ladder across workers', () => {
  it('keeps a NAT that retries every TC over TCP on rung 2, however its TCP connections are spread', async () => {
    const nat = await traffic('nat-txt', 8, 100, '127.0.0.50');
    expect(nat.tc).toBeGreaterThan(200);
    expect(nat.viaTcp).toBe(nat.tc);
    expect(nat.full).toBe(nat.lookups);
    expect(await ag.metric('ampguard_tcp_followups_total')).toBeGreaterThan(200);
    expect(await blockedPrefixes()).not.toContain('127.0.0.50');
  });

  it('blocks a source that never comes back over TCP', async () => {
    await traffic('victim', 5, 100, '127.0.0.60');
    expect(await until(async () => (await blockedPrefixes()).includes('127.0.0.60'), 5000)).toBe(true);
    expect(await blockedPrefixes()).not.toContain('127.0.0.50');
  });
});
