// /api/stats: the registry's numbers (summed over workers in cluster mode) in
// one small JSON object; the dashboard turns successive snapshots into rates.
import type { Registry } from 'prom-client';

export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

interface BackendStats {
  readonly name: string;
  readonly up: boolean;
  /** replies timed and their total latency, for an average between two snapshots */
  readonly latency_count: number;
  readonly latency_sum: number;
}

interface Stats {
  readonly time: number;
  readonly queries: Record<string, number>;
  readonly responses: Record<string, number>;
  readonly query_bytes: Record<string, number>;
  readonly response_bytes: Record<string, number>;
  readonly truncated: Record<string, number>;
  readonly dropped: Record<string, number>;
  readonly blocks: Record<string, number>;
  readonly large_responses: number;
  readonly blocked_clients: number;
  readonly tracked_prefixes: number;
  readonly max_tracked: number;
  readonly enforcement_degraded: boolean;
  readonly backends: readonly BackendStats[];
  /** the ladder (docs/defence.md): keys on rung 2 by level, TCP follow-ups, escalations by level */
  readonly ladder_prefixes: Record<string, number>;
  readonly tcp_followups: number;
  /** real clients (a TCP query answered, or small answers) whose prefix or network is on rung 2 or blocked now */
  readonly collateral_clients: Record<string, number>;
  readonly would_truncate: number;
  readonly escalations: Record<string, number>;
  /** UDP socket I/O (docs/performance.md): native | dgram, or mixed when workers differ */
  readonly udp_io_mode: string;
  /** processes serving UDP in each mode */
  readonly udp_io: Record<string, number>;
  /** fleet.nats (docs/fleet.md): the link to NATS and the peers heard in the last 5 s; null for a node that stands alone */
  readonly fleet: { readonly connected: boolean; readonly peers: number } | null;
}

function udpIoMode(byMode: Record<string, number>): string {
  const modes = Object.keys(byMode).filter((m) => (byMode[m] ?? 0) > 0);
  return modes.length === 1 ? (modes[0] as string) : modes.length === 0 ? 'none' : 'mixed';
}

function byLabel(metrics: readonly MetricJson[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of metrics.find((m) => m.name === name)?.values ?? []) {
    const key = String(v.labels[label] ?? '');
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

function single(metrics: readonly MetricJson[], name: string): number {
  return metrics.find((m) => m.name === name)?.values[0]?.value ?? 0;
}

export function statsFromMetrics(metrics: readonly MetricJson[], time: number): Stats {
  const latency = metrics.find((m) => m.name === 'ampguard_backend_latency_seconds')?.values ?? [];
  const up = byLabel(metrics, 'ampguard_backend_up', 'backend');
  const backends = Object.keys(up).map((name) => {
    const of = (suffix: string): number =>
      latency.find((v) => (v as { metricName?: string }).metricName === `ampguard_backend_latency_seconds_${suffix}` && v.labels.backend === name)?.value ?? 0;
    return { name, up: (up[name] ?? 0) > 0, latency_count: of('count'), latency_sum: of('sum') };
  });
  return {
    time,
    queries: byLabel(metrics, 'ampguard_queries_total', 'proto'),
    responses: byLabel(metrics, 'ampguard_responses_total', 'proto'),
    query_bytes: byLabel(metrics, 'ampguard_query_bytes_total', 'proto'),
    response_bytes: byLabel(metrics, 'ampguard_response_bytes_total', 'proto'),
    truncated: byLabel(metrics, 'ampguard_truncated_total', 'reason'),
    dropped: byLabel(metrics, 'ampguard_dropped_total', 'reason'),
    blocks: byLabel(metrics, 'ampguard_blocks_total', 'mode'),
    large_responses: single(metrics, 'ampguard_large_responses_total'),
    blocked_clients: single(metrics, 'ampguard_blocked_clients'),
    tracked_prefixes: single(metrics, 'ampguard_tracked_prefixes'),
    max_tracked: single(metrics, 'ampguard_tracked_prefixes_max'),
    enforcement_degraded: single(metrics, 'ampguard_enforcement_degraded') > 0,
    backends,
    ladder_prefixes: byLabel(metrics, 'ampguard_ladder_prefixes', 'level'),
    tcp_followups: single(metrics, 'ampguard_tcp_followups_total'),
    collateral_clients: byLabel(metrics, 'ampguard_collateral_clients', 'state'),
    would_truncate: single(metrics, 'ampguard_would_truncate_total'),
    escalations: byLabel(metrics, 'ampguard_escalations_total', 'level'),
    udp_io_mode: udpIoMode(byLabel(metrics, 'ampguard_udp_io_mode', 'mode')),
    udp_io: byLabel(metrics, 'ampguard_udp_io_mode', 'mode'),
    fleet: metrics.some((m) => m.name === 'ampguard_fleet_connected')
      ? { connected: single(metrics, 'ampguard_fleet_connected') > 0, peers: single(metrics, 'ampguard_fleet_peers') }
      : null,
  };
}
