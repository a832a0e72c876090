// deploy/prometheus and deploy/grafana: the rules load and their unit tests
// pass under the real promtool, and the dashboard plots what the alerts watch.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rules, panelExprs } from '../helpers/rules.js';

const PROM = 'deploy/prometheus';
const promtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
if (!promtool) console.warn('promtool tests skipped: promtool is not installed (Debian package prometheus)');

describe.skipIf(!promtool)('promtool', () => {
  it('accepts the rules and the scrape config', () => {
    expect(execFileSync('promtool', ['check', 'rules', `${PROM}/ampguard.rules.yml`], { encoding: 'utf8' })).toMatch(/SUCCESS: 18 rules found/);
    expect(execFileSync('promtool', ['check', 'config', `${PROM}/prometheus.yml`], { encoding: 'utf8' })).toMatch(/SUCCESS/);
  });

  it('passes the unit tests of every alert', () => {
    expect(execFileSync('promtool', ['test', 'rules', `${PROM}/ampguard.rules.test.yml`], { encoding: 'utf8' })).toMatch(/SUCCESS/);
  });
});

describe('rules and dashboard', () => {
  const alerts = rules.filter((r) => r.alert);

  it('has the seven alerts of the operator guide, each with a runbook', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'AmpguardAmplificationHigh', 'AmpguardBackendDown', 'AmpguardBlockSurge',
      'AmpguardEnforcementDegraded', 'AmpguardManyPrefixesTruncated', 'AmpguardTrackedPrefixesNearCapacity', 'AmpguardTruncationSpike',
    ]);
    for (const a of alerts) expect(a.annotations?.runbook?.length, a.alert).toBeGreaterThan(40);
  });

  it('has a unit test for every alert', () => {
    const tests = readFileSync(`${PROM}/ampguard.rules.test.yml`, 'utf8');
    for (const a of alerts) expect(tests, a.alert).toContain(`alertname: ${a.alert}`);
  });

  it('plots exactly what each alert compares to its threshold', () => {
    for (const a of alerts) {
      const watched = a.expr.split(/ (?:>|<|==|>=|<=) /)[0]?.trim();
      expect(panelExprs, `${a.alert} watches ${watched}`).toContain(watched);
    }
  });

  it('plots every recording rule', () => {
    for (const r of rules.filter((x) => x.record)) {
      expect(panelExprs.some((e) => e.includes(r.record as string)), r.record).toBe(true);
    }
  });
});

