// Cluster metrics without shipping registries: a worker sends the primary its
// data-plane numbers as one small JSON object every SNAPSHOT_MS (counters,
// gauges, latency bucket counts; no names, no help text, no labels beyond the
// backend), and the primary serves its one registry over the sum of the
// latest snapshots. A scrape never waits on a worker.
import { Counters } from './counters.js';
import { BucketCounts } from './histogram.js';
import type { DataplaneSources } from './registry.js';

export const SNAPSHOT_MS = 1000;

type CounterValues = Record<string, number | Record<string, number>>;

export interface DataplaneSnapshot {
  readonly counters: CounterValues;
  readonly tcpConnections: number;
  readonly tcpUpstreamQueued?: number;
  readonly trackedPrefixes: number;
  readonly maxTracked: number;
  readonly ladder?: Readonly<Record<'prefix' | 'aggregate', number>>;
  /** real clients on TC or blocked now (registry.ts collateralClients) */
  readonly collateral?: Readonly<Record<'blocked' | 'tc', number>>;
  readonly udpIoMode?: 'native' | 'dgram';
  readonly backends: readonly {
    readonly name: string;
    readonly up: boolean;
    readonly buckets: readonly number[];
    readonly sum: number;
    readonly count: number;
  }[];
}

export function takeSnapshot(src: DataplaneSources, latency: ReadonlyMap<string, BucketCounts>): DataplaneSnapshot {
  return {
    counters: JSON.parse(JSON.stringify(src.counters)) as CounterValues,
    tcpConnections: src.tcpConnections(),
    ...(src.tcpUpstreamQueued ? { tcpUpstreamQueued: src.tcpUpstreamQueued() } : {}),
    trackedPrefixes: src.trackedPrefixes(),
    maxTracked: src.maxTracked,
    ...(src.ladderPrefixes ? { ladder: src.ladderPrefixes() } : {}),
    ...(src.collateralClients ? { collateral: src.collateralClients() } : {}),
    ...(src.udpIoMode ? { udpIoMode: src.udpIoMode } : {}),
    backends: src.backends.map((b) => {
      const h = latency.get(b.name);
      return { name: b.name, up: b.up, buckets: h ? [...h.counts] : [], sum: h?.sum ?? 0, count: h?.count ?? 0 };
    }),
  };
}

function addCounters(into: CounterValues, from: CounterValues): void {
  for (const [key, v] of Object.entries(from)) {
    if (typeof v === 'number') {
      into[key] = ((into[key] as number | undefined) ?? 0) + v;
    } else if (typeof v === 'object' && v !== null) {
      const target = (into[key] ??= {}) as Record<string, number>;
      for (const [label, n] of Object.entries(v)) if (typeof n === 'number') target[label] = (target[label] ?? 0) + n;
    }
  }
}

function zero(c: CounterValues): void {
  for (const [key, v] of Object.entries(c)) {
    if (typeof v === 'number') c[key] = 0;
    else for (const label of Object.keys(v)) v[label] = 0;
  }
}

/**
 * The workers' latest snapshots as one set of sources. Counters of workers that
 * died are kept (`retire`), so totals never go backwards when one is replaced.
 * The sums are made when a snapshot arrives (once a second per worker), not per scrape.
 */
export class SnapshotSum {
  private readonly latest = new Map<number, DataplaneSnapshot>();
  private readonly retired = new Counters() as unknown as CounterValues;
  private readonly retiredLatency = new Map<string, BucketCounts>();
  /** the sum the registry reads, updated in place */
  private readonly total = new Counters();

  constructor(private readonly bounds: readonly number[]) {}

  update(worker: number, s: DataplaneSnapshot): void {
    this.latest.set(worker, s);
    this.recount();
  }

  /** a worker left: its counters stay in the totals, its gauges leave them */
  retire(worker: number): void {
    const s = this.latest.get(worker);
    this.latest.delete(worker);
    if (!s) return;
    addCounters(this.retired, s.counters);
    for (const b of s.backends) this.addLatency(this.retiredLatency, b);
    this.recount();
  }

  private recount(): void {
    const t = this.total as unknown as CounterValues;
    zero(t);
    addCounters(t, this.retired);
    for (const s of this.latest.values()) addCounters(t, s.counters);
  }

  private addLatency(into: Map<string, BucketCounts>, b: DataplaneSnapshot['backends'][number]): void {
    let h = into.get(b.name);
    if (!h) into.set(b.name, (h = new BucketCounts(this.bounds)));
    const counts = h.counts;
    b.buckets.forEach((n, i) => {
      if (i < counts.length) counts[i] = counts[i]! + n;
    });
    h.sum += b.sum;
    h.count += b.count;
  }

  /**
   * sources for registerDataplaneMetrics: sums, or the largest for the table sizes
   * (every worker tracks every prefix it hears of, and keeps its own rungs for the
   * same shared budgets, so the largest table is the figure)
   */
  sources(): DataplaneSources {
    const snapshots = (): DataplaneSnapshot[] => [...this.latest.values()];
    const max = (f: (s: DataplaneSnapshot) => number): number => snapshots().reduce((m, s) => Math.max(m, f(s)), 0);
    const self = this;
    return {
      counters: this.total,
      get backends() {
        const up = new Map<string, boolean>();
        for (const s of snapshots()) for (const b of s.backends) up.set(b.name, (up.get(b.name) ?? false) || b.up);
        return [...up].map(([name, isUp]) => ({ name, up: isUp, observeLatency: () => undefined }));
      },
      trackedPrefixes: () => max((s) => s.trackedPrefixes),
      get maxTracked() {
        return max((s) => s.maxTracked);
      },
      tcpConnections: () => snapshots().reduce((n, s) => n + s.tcpConnections, 0),
      tcpUpstreamQueued: () => snapshots().reduce((n, s) => n + (s.tcpUpstreamQueued ?? 0), 0),
      // every worker keeps its own rungs for the same shared budgets: the largest is the figure
      udpIoProcesses: () => ({
        native: snapshots().filter((s) => s.udpIoMode === 'native').length,
        dgram: snapshots().filter((s) => s.udpIoMode === 'dgram').length,
      }),
      ladderPrefixes: () => ({ prefix: max((s) => s.ladder?.prefix ?? 0), aggregate: max((s) => s.ladder?.aggregate ?? 0) }),
      collateralClients: () => ({
        blocked: snapshots().reduce((n, s) => n + (s.collateral?.blocked ?? 0), 0),
        tc: snapshots().reduce((n, s) => n + (s.collateral?.tc ?? 0), 0),
      }),
      latency() {
        const out = new Map<string, BucketCounts>();
        for (const [name, h] of self.retiredLatency) self.addLatency(out, { name, up: false, buckets: [...h.counts], sum: h.sum, count: h.count });
        for (const s of snapshots()) for (const b of s.backends) self.addLatency(out, b);
        return out;
      },
    };
  }
}
