// The operator's JSON API and `ampguard top` against a running ampguard (two
// workers) with real traffic: bounded answers, sorted top lists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import type { Recursor } from '../helpers/recursor.js';
import { CLI, type Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';

const TRAFFIC = resolve('test/helpers/traffic.mjs');
let rec: Recursor;
let ag: Ampguard;
const get = async <T>(path: string): Promise<T> => (await (await fetch(`http://127.0.0.1:${ag.metricsPort}${path}`)).json()) as T;

beforeAll(async () => {
  ({ rec, ag } = await startPair({ workers: 2, block: { mode: 'userspace', allowlist: ['127.0.0.0/25'] } }));
  const sources = Array.from({ length: 30 }, (_, i) => `127.0.0.${60 + i}`).join(',');
  execFileSync('node', [TRAFFIC, '127.0.0.1', String(ag.port), '3', '300', sources]);
  // one over-budget source outside the allowlist, for the block list: long enough for the
  // ladder's 2 s judging window to end while it still floods (docs/defence.md)
  execFileSync('node', [TRAFFIC, '127.0.0.1', String(ag.port), '4', '100', '127.0.0.200']);
});
afterAll(() => stopPair({ rec, ag }));

describe('operator API', () => {
  it('/api/top is sorted, bounded by n (at most 100) and summed over workers', async () => {
    const five = await get<{ window_s: number; top: { prefix: string; bytes: number; rung: number }[] }>('/api/top?n=5');
    expect(five.window_s).toBe(60);
    expect(five.top).toHaveLength(5);
    for (const t of five.top) expect([1, 2, 3], t.prefix).toContain(t.rung);
    const blocked = await get<{ top: { prefix: string; rung: number }[] }>('/api/top?n=100');
    expect(blocked.top.find((t) => t.prefix === '127.0.0.200')?.rung).toBe(3);
    for (let i = 1; i < 5; i++) expect(five.top[i]!.bytes).toBeLessThanOrEqual(five.top[i - 1]!.bytes);
    const all = await get<{ top: unknown[] }>('/api/top?n=100000');
    expect(all.top.length).toBe(31);
    const stats = await get<{ large_responses: number }>('/api/stats');
    const listed = (await get<{ top: { bytes: number }[] }>('/api/top?n=100')).top.reduce((a, t) => a + t.bytes, 0);
    expect(listed).toBeGreaterThan(stats.large_responses * 800);
  });

  it('/api/stats carries the counters the dashboard needs', async () => {
    const s = await get<Record<string, unknown>>('/api/stats');
    for (const key of ['time', 'queries', 'responses', 'query_bytes', 'response_bytes', 'truncated', 'dropped', 'blocks', 'large_responses', 'blocked_clients', 'tracked_prefixes', 'max_tracked', 'backends']) {
      expect(s, key).toHaveProperty(key);
    }
    expect(s.max_tracked).toBe(100000);
    expect((s.truncated as { any: number }).any).toBeGreaterThan(0);
    expect(s.blocked_clients).toBe(1);
  });

  it('/api/blocks is bounded by limit and lists the latest events', async () => {
    const b = await get<{ total: number; blocks: unknown[]; recent: { prefix: string; reason: string }[] }>('/api/blocks?limit=0');
    expect(b.total).toBe(1);
    expect(b.blocks).toEqual([]);
    expect(b.recent[0]).toMatchObject({ prefix: '127.0.0.200', reason: expect.stringMatching(/^(no_followup|over_budget)$/), level: 'prefix', rung: 3 });
    // one vocabulary: `blocks show`, /api/blocks and the log name the same reason and level
    const event = b.recent[0] as unknown as { reason: string; level: string; charged: number; at: number };
    // async: a synchronous CLI run (seconds on a loaded machine) would stall this process's event loop past the
    // server's 5 s keep-alive, and fetch would then reuse the pooled connection the server had closed meanwhile
    const { stdout: show } = await promisify(execFile)('node', [CLI, 'blocks', 'show', '127.0.0.200', '--config', ag.configPath], { encoding: 'utf8' });
    expect(show).toContain('127.0.0.200: blocked as 127.0.0.200');
    expect(show).toMatch(new RegExp(`reason: +${event.reason} \\(`));
    expect(show).toMatch(/reason: +no_followup \(judged on the ladder/);
    expect(show).toMatch(new RegExp(`level: +${event.level} \\(`));
    expect(show).toMatch(/rung: +3 \(blocked\)/);
    expect(show).toContain(`when:    ${new Date(event.at).toISOString()}`);
    expect(show).toMatch(new RegExp(`bytes: +${event.charged} large-reply bytes`));
    expect(event.charged).toBeGreaterThan(0);
    expect(show).toMatch(/expires: in \d+ s/);
    expect(show).toMatch(/where: +userspace/);
    const logged = ag.proc.output().split('\n').find((l) => l.includes('"msg":"prefix blocked"') && l.includes('"prefix":"127.0.0.200"'));
    expect(logged).toContain(`"level":"${event.level}","reason":"${event.reason}"`);
    // pages: offset and next
    const first = await get<{ offset: number; next: number | null; blocks: { prefix: string }[] }>('/api/blocks?limit=1&offset=0');
    expect(first).toMatchObject({ offset: 0, next: null, blocks: [{ prefix: '127.0.0.200' }] });
    const past = await get<{ offset: number; next: number | null; blocks: unknown[] }>('/api/blocks?limit=1&offset=1');
    expect(past).toMatchObject({ offset: 1, next: null, blocks: [] });
    const hostile = await get<{ offset: number; blocks: unknown[] }>('/api/blocks?limit=abc&offset=-5');
    expect(hostile).toMatchObject({ offset: 0, blocks: [] });
  });

  it('`ampguard top --once` prints the same list in the terminal', () => {
    const out = execFileSync('node', [CLI, 'top', '--config', ag.configPath, '--once', '-n', '3'], { encoding: 'utf8' });
    const rows = out.split('\n').filter((l) => /^\s+\d+\s+127\.0\.0\.\d+/.test(l));
    expect(rows).toHaveLength(3);
    expect(out).toMatch(/large-reply bytes per prefix, last 60 s/);
    // with room for every prefix, the blocked one is listed and marked
    const full = execFileSync('node', [CLI, 'top', '--config', ag.configPath, '--once', '-n', '40'], { encoding: 'utf8' });
    expect(full.split('\n').find((l) => l.includes('127.0.0.200'))).toMatch(/\byes$/);
    expect(full.split('\n').find((l) => l.includes('127.0.0.60 '))).not.toMatch(/yes$/);
  });
});
