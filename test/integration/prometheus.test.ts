// A real Prometheus server (Debian package) on loopback scrapes a running
// ampguard under a small generated load with ANY and large answers; every rule
// and dashboard expression must evaluate through its HTTP API, and the
// amplification factor must be the figure the test computes from its own bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startProc } from '../helpers/process.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/blast.js';
import { poll } from '../helpers/poll.js';
import { rules, panelExprs, RULES_FILE } from '../helpers/rules.js';

const missing = spawnSync('sh', ['-c', 'command -v prometheus']).status === 0 ? null : 'prometheus is not installed (Debian package prometheus)';
if (missing) console.warn(`Prometheus test skipped: ${missing}`);

const TRAFFIC = resolve('test/helpers/traffic.mjs');
const dir = mkdtempSync(join(tmpdir(), 'ampguard-prom-'));
let rec: Recursor;
let ag: Ampguard;
let promUrl = '';

interface Sample { metric: Record<string, string>; value: [number, string] }

async function query(expr: string): Promise<{ status: string; data: { result: Sample[] } }> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as { status: string; data: { result: Sample[] } };
}

/** the first value of an instant query, NaN when it has none */
async function value(expr: string): Promise<number> {
  return Number((await query(expr)).data.result[0]?.value[1] ?? NaN);
}

describe.skipIf(missing !== null)('Prometheus against a running ampguard', () => {
  let traffic = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, byType: {} as Record<string, number>, receivedByType: {} as Record<string, number> };

  beforeAll(async () => {
    ({ rec, ag } = await startPair({ block: { mode: 'userspace', allowlist: ['127.0.0.0/8'] } }));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(join(dir, 'prometheus.yml'), stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [resolve(RULES_FILE)],
      scrape_configs: [{ job_name: 'ampguard', static_configs: [{ targets: [`127.0.0.1:${ag.metricsPort}`] }] }],
    }));
    const prom = startProc('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ]);
    expect(await until(async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok === true, 20_000), prom.output()).toBe(true);
    // two scrapes of the idle byte counters, so the rate windows start before the load
    const idleSamples = 'count_over_time(ampguard_query_bytes_total{proto="udp"}[1m])';
    expect(await poll(() => value(idleSamples), (n) => n >= 2, 20_000), idleSamples).toBeGreaterThanOrEqual(2);
    traffic = JSON.parse(execFileSync('node', [TRAFFIC, '127.0.0.1', String(ag.port), '8', '200', '127.0.0.60,127.0.0.61,127.0.0.62', 'all'], { encoding: 'utf8' }));
    // and one that holds every reply the client got (each was counted when sent), so
    // the windows end after the load; the tests then poll for what they assert
    const scraped = 'sum(ampguard_responses_total{proto="udp"})';
    expect(await poll(() => value(scraped), (n) => n >= traffic.received, 20_000), scraped).toBeGreaterThanOrEqual(traffic.received);
  });

  afterAll(async () => {
    await stopPair({ rec, ag });
    rmSync(dir, { recursive: true, force: true });
  });

  it('scraped the load: ANY truncated, large replies charged', async () => {
    // loopback UDP under load may lose a datagram: what ampguard counted lies between
    // the replies the client got and the queries it sent, of each type
    expect(traffic.received).toBeGreaterThanOrEqual(traffic.sent * 0.99);
    const any = await value('sum(ampguard_truncated_total{reason="any"})');
    expect(any).toBeGreaterThanOrEqual(traffic.receivedByType.ANY ?? 0);
    expect(any).toBeLessThanOrEqual(traffic.byType.ANY ?? 0);
    expect(traffic.receivedByType.ANY).toBeGreaterThan(0);
    // the ~900-byte TXT answers are the large ones, all sent in full (127.0.0.0/8 is allowlisted)
    const large = await value('sum(ampguard_large_responses_total)');
    expect(large).toBeGreaterThanOrEqual(traffic.receivedByType.TXT ?? 0);
    expect(large).toBeLessThanOrEqual(traffic.byType.TXT ?? 0);
    expect(traffic.receivedByType.TXT).toBeGreaterThan(0);
  });

  it('evaluates every recording rule and every dashboard expression to data', async () => {
    const exprs = [...new Set([...rules.filter((r) => r.record).map((r) => r.record as string), ...panelExprs])];
    for (const expr of exprs) {
      const r = await query(expr);
      expect(r.status, expr).toBe('success');
      expect(r.data.result.length, expr).toBeGreaterThan(0);
    }
  });

  it('evaluates every alert expression', async () => {
    const alerts = rules.filter((r) => r.alert);
    for (const a of alerts) {
      expect((await query(a.expr)).status, a.alert).toBe('success');
    }
    type Rules = { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const health = async (): Promise<[string, string][]> =>
      ((await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as Rules).data.groups.flatMap((g) => g.rules).map((r) => [r.name, r.health]);
    // a rule's health is 'unknown' until its group has been evaluated once
    const all = await poll(health, (h) => h.length === alerts.length && h.every(([, v]) => v !== 'unknown'), 10_000);
    expect(all.map(([name]) => name).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const [name, h] of all) expect(h, name).toBe('ok');
  });

  it('reports the amplification factor the client measured', async () => {
    const expected = traffic.bytesReceived / traffic.bytesSent;
    expect(expected).toBeGreaterThan(2);
    // the recorded rule catches up with the last scrape within an evaluation or two
    const within = (got: number): boolean => Math.abs(got - expected) / expected < 0.01;
    const got = await poll(() => value('ampguard:amplification_factor:rate1m'), within, 10_000);
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.01);
  });
});
