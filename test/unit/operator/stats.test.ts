// /api/stats from a registry: every field name snake_case, as in the rest of
// /api/* and replay --json (docs/api.md), and the numbers where the dashboard
// reads them.
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { statsFromMetrics } from '../../../src/operator/stats.js';
import { registerDataplaneMetrics, registerEnforcementMetrics } from '../../../src/metrics/registry.js';
import { Counters } from '../../../src/metrics/counters.js';

/** every field name in `value`, nested ones too */
function keys(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => keys(v));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...keys(v)]);
}

describe('/api/stats', () => {
  it('names every field in snake_case and carries the registry numbers', async () => {
    const counters = new Counters();
    counters.largeResponses = 7;
    counters.queryBytes.udp = 100;
    const registry = new Registry();
    registerDataplaneMetrics(registry, {
      counters,
      backends: [{ name: '127.0.0.1:53', up: true, observeLatency: () => undefined }],
      trackedPrefixes: () => 3,
      maxTracked: 100,
      tcpConnections: () => 0,
      udpIoMode: 'native',
    });
    registerEnforcementMetrics(registry, { blockedClients: () => 2, blocksByMode: () => ({ userspace: 2 }), kernelErrors: () => 0, enforcementDegraded: () => false });
    const s = statsFromMetrics(await registry.getMetricsAsJSON(), 1_000);
    // the maps by label (queries.udp, blocks.userspace) are keyed by label values, data rather than field names
    const fields = keys({ ...s, queries: {}, responses: {}, query_bytes: {}, response_bytes: {}, truncated: {}, dropped: {}, blocks: {}, ladder_prefixes: {}, escalations: {}, udp_io: {} });
    expect(fields.length).toBeGreaterThan(20);
    for (const f of fields) expect(f).toMatch(/^[a-z][a-z0-9_]*$/);
    expect(s.large_responses).toBe(7);
    expect(s.query_bytes.udp).toBe(100);
    expect(s.tracked_prefixes).toBe(3);
    expect(s.max_tracked).toBe(100);
    expect(s.blocked_clients).toBe(2);
    expect(s.udp_io_mode).toBe('native');
    expect(s.backends[0]).toEqual({ name: '127.0.0.1:53', up: true, latency_count: 0, latency_sum: 0 });
  });
});
