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

describe.skipIf(missing !== null)('Prometheus against a running ampguard', () => {
  let traffic = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0, byType: {} as Record<string, number> };

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
    // a few scrapes of the idle counters, so the rate windows start before the load
    expect(await until(async () => (await query('ampguard_queries_total')).data.result.length > 0, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 2500));
    traffic = JSON.parse(execFileSync('node', [TRAFFIC, '127.0.0.1', String(ag.port), '8', '200', '127.0.0.60,127.0.0.61,127.0.0.62'], { encoding: 'utf8' }));
    // and a few after it, so they end after it
    await new Promise((r) => setTimeout(r, 3500));
  });

  afterAll(async () => {
    await stopPair({ rec, ag });
    rmSync(dir, { recursive: true, force: true });
  });

  it('scraped the load: ANY truncated, large replies charged', async () => {
    expect(traffic.received).toBe(traffic.sent);
    const any = await query('sum(ampguard_truncated_total{reason="any"})');
    expect(Number(any.data.result[0]?.value[1])).toBe(traffic.byType.ANY);
    const large = await query('sum(ampguard_large_responses_total)');
    // the ~900-byte TXT answers are the large ones
    expect(Number(large.data.result[0]?.value[1])).toBe(traffic.byType.TXT);
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
    for (const a of rules.filter((r) => r.alert)) {
      expect((await query(a.expr)).status, a.alert).toBe('success');
    }
    const firing = await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json() as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const health = firing.data.groups.flatMap((g) => g.rules).map((r) => [r.name, r.health]);
    expect(health.length).toBe(6);
    for (const [name, h] of health) expect(h, name).toBe('ok');
  });

  it('reports the amplification factor the client measured', async () => {
    const expected = traffic.bytesReceived / traffic.bytesSent;
    const r = await query('ampguard:amplification_factor:rate1m');
    const got = Number(r.data.result[0]?.value[1]);
    expect(expected).toBeGreaterThan(2);
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.01);
  });
});
