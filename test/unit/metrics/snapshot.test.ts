// Cluster metrics from numeric snapshots: sums, maxima, and totals that do not
// go backwards when a worker is replaced.
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../src/metrics/counters.js';
import { SnapshotSum, takeSnapshot } from '../../../src/metrics/snapshot.js';
import { LATENCY_BOUNDS, hookLatency, type DataplaneSources } from '../../../src/metrics/registry.js';

function worker(queries: number, tracked: number, up: boolean): { src: DataplaneSources; snap: () => ReturnType<typeof takeSnapshot> } {
  const counters = new Counters();
  counters.queries.udp = queries;
  counters.largeResponses = queries / 10;
  const backends = [{ name: 'b1', up, observeLatency: (_s: number) => undefined }];
  const src: DataplaneSources = { counters, backends, trackedPrefixes: () => tracked, maxTracked: 100, tcpConnections: () => 1 };
  const latency = hookLatency(backends);
  backends[0]!.observeLatency(0.002);
  return { src, snap: () => takeSnapshot(src, latency) };
}

describe('SnapshotSum', () => {
  it('sums counters and latency, takes the largest table, any backend up', () => {
    const sum = new SnapshotSum(LATENCY_BOUNDS);
    const a = worker(100, 5, false);
    const b = worker(50, 7, true);
    sum.update(1, a.snap());
    sum.update(2, b.snap());
    const s = sum.sources();
    expect(s.counters.queries.udp).toBe(150);
    expect(s.counters.largeResponses).toBe(15);
    expect(s.trackedPrefixes()).toBe(7);
    expect(s.tcpConnections()).toBe(2);
    expect(s.backends.some((b) => b.up)).toBe(true);
    expect([...s.latency!()].find(([n]) => n === 'b1')![1].count).toBe(2);
    // a snapshot is numbers only, small enough to send every second (about 1.2 kB with the UDP error counters)
    expect(JSON.stringify(a.snap()).length).toBeLessThan(2048);
  });

  it('keeps a dead worker counters in the totals', () => {
    const sum = new SnapshotSum(LATENCY_BOUNDS);
    sum.update(1, worker(100, 5, true).snap());
    sum.update(2, worker(50, 7, true).snap());
    sum.retire(1);
    sum.update(3, worker(1, 1, true).snap());
    const s = sum.sources();
    expect(s.counters.queries.udp).toBe(151);
    expect(s.trackedPrefixes()).toBe(7);
    expect(s.tcpConnections()).toBe(2);
  });
});
