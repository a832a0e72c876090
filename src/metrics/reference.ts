// docs/metrics.md, generated from the registry itself: every metric's name,
// type, labels and help text as a scrape would show them, plus the notes below
// that say what a help line is too short for (links, how workers combine).
// `npm run gen:docs` writes it; test/meta/drift.test.ts fails when it differs.
import { Registry } from 'prom-client';
import { Counters } from './counters.js';
import { registerDataplaneMetrics, registerEnforcementMetrics, registerFleetMetrics, registerWorkerMetrics } from './registry.js';

interface MetricReference {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
  readonly help: string;
}

/** What a help line is too short for; every key must be a registered metric (the drift test checks). */
export const METRIC_NOTES: Readonly<Record<string, string>> = {
  ampguard_queries_total: 'Malformed queries are counted too.',
  ampguard_responses_total: 'TC=1 stand-ins and SERVFAILs included.',
  ampguard_truncated_total: '`budget`: the defence ladder answered a prefix over budget with TC=1 ([defence.md](defence.md)).',
  ampguard_dropped_total:
    'Reasons: `malformed`, `blocked` (userspace block table), `rate` (the reply that put a prefix over budget), `backend_timeout`, `overload` (in-flight table full), `bad_source`, `internal_error`.',
  ampguard_upstream_rejected_total: 'See [hostile-input.md](hostile-input.md).',
  ampguard_tcp_upstream_queued: 'A query that waits in vain counts as `pool_full` in `ampguard_tcp_upstream_failures_total` ([tcp.md](tcp.md)).',
  ampguard_tcp_followups_total:
    'A follow-up repeats a question answered with TC to the same prefix within `policy.ladder.window_ms`; each TC answer vouches for one.',
  ampguard_ladder_prefixes: '`aggregate` counts networks of `policy.large_response.aggregate` and its `wide` level; *max* over workers. See [defence.md](defence.md).',
  ampguard_escalations_total: '`level` `aggregate` is kept for continuity and stays 0: a network is answered with TC, never escalated.',
  ampguard_udp_io_mode: 'See [performance.md](performance.md).',
  ampguard_udp_io_errors_total: 'A `socket_error` is an asynchronous error such as an ICMP port-unreachable: the socket reads on.',
  ampguard_tracked_prefixes: '*max* over workers.',
  ampguard_tracked_prefixes_max: 'To plot the table against its capacity; *max* over workers.',
  ampguard_backend_up: 'The `backend` label is `IP:port`; *max* over workers.',
  ampguard_worker_restarts_total: 'With `workers` > 1 only; see [operations.md](operations.md#health).',
  ampguard_fleet_connected: 'With `fleet.nats` only (fail-static while 0); see [fleet.md](fleet.md).',
  ampguard_fleet_peers: 'With `fleet.nats` only.',
  ampguard_fleet_messages_total: 'With `fleet.nats` only; `out` covers evidence, heartbeats and verdicts.',
  ampguard_kernel_rejected_total: 'See [enforcement.md](enforcement.md).',
  ampguard_enforcement_mode: 'With `block.mode: auto`, userspace when the kernel set could not be made.',
  ampguard_enforcement_degraded: 'The reason is in `GET /api/blocks` `degraded_reason` and in the log.',
  ampguard_kernel_checks_total: 'A failed check degrades enforcement; see [enforcement.md](enforcement.md).',
  ampguard_kernel_repairs_total: 'Lost members are re-added with the time they have left; leftovers are removed after their members were carried over.',
};

/** Every metric a process may register (dataplane, enforcement, cluster primary, fleet), in registration order. */
export async function metricReference(): Promise<MetricReference[]> {
  const registry = new Registry();
  const none = (): number => 0;
  registerDataplaneMetrics(registry, {
    counters: new Counters(),
    backends: [{ name: 'b', up: true, observeLatency: () => undefined }],
    trackedPrefixes: none,
    maxTracked: 0,
    tcpConnections: none,
  });
  registerWorkerMetrics(registry, () => ({ crash: 0, hung: 0 }));
  registerFleetMetrics(registry, { connected: () => false, peers: none, messages: () => ({ in: 0, out: 0, rejected: 0 }) });
  registerEnforcementMetrics(registry, { blockedClients: none, blocksByMode: () => ({}), kernelErrors: none, enforcementDegraded: () => false });
  const out: MetricReference[] = [];
  for (const m of await registry.getMetricsAsJSON()) {
    if (m.name.startsWith('ampguard_process_')) continue; // prom-client's default metrics
    const single = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[]; help: string };
    const seen = new Set<string>(single.labelNames ?? []);
    for (const v of m.values ?? []) for (const l of Object.keys(v.labels)) if (l !== 'le') seen.add(l);
    out.push({ name: m.name, type: String(m.type), labels: [...seen], help: single.help });
  }
  return out;
}

const cellText = (s: string): string => s.replace(/\|/g, '\\|');

export async function generateMetricsMarkdown(): Promise<string> {
  const rows = (await metricReference()).map((m) => {
    const note = METRIC_NOTES[m.name];
    const meaning = `${m.help.charAt(0).toUpperCase()}${m.help.slice(1)}.${note ? ` ${note}` : ''}`;
    return `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(', ')} | ${cellText(meaning)} |`;
  });
  return `<!-- generated by \`npm run gen:docs\` from src/metrics/registry.ts and src/metrics/reference.ts: edit those, not this file -->
# Metrics

\`GET /metrics\` on \`metrics.listen\` (default \`127.0.0.1:9153\`) serves the
Prometheus text format; \`GET /healthz\` answers 200 while the data path serves, 503 with the reasons otherwise ([operations.md](operations.md#health)).
Every metric is registered once, in \`src/metrics/registry.ts\`, with help text;
label values come from closed sets, never from client addresses (unbounded
cardinality: the per-prefix view is \`/api/top\`, see [api.md](api.md)). With
\`workers\` > 1 the primary serves the sum over the workers (the gauges marked
*max* take the largest value instead), as last pushed by each worker: at most
about a second old.

This file is generated from the registry: the meaning column is each
metric's help text (what \`/metrics\` shows after \`# HELP\`) and a note kept
beside the registry in \`src/metrics/reference.ts\`. To add or change a
metric, edit the registry (and the note), then \`npm run build && npm run
gen:docs\`; \`test/meta/drift.test.ts\` fails while this file differs.

| name | type | labels | meaning |
| --- | --- | --- | --- |
${rows.join('\n')}

Also exported: prom-client's default process and Node.js metrics with the
prefix \`ampguard_process_\` (CPU, resident memory, open file descriptors, event
loop lag, heap, GC); their names are prom-client's and are not listed here.

## Useful expressions

- amplification factor:
  \`rate(ampguard_response_bytes_total{proto="udp"}[5m]) / rate(ampguard_query_bytes_total{proto="udp"}[5m])\`
- share of UDP answers that were TC=1:
  \`sum(rate(ampguard_truncated_total[5m])) / rate(ampguard_responses_total{proto="udp"}[5m])\`
- budget table fill: \`ampguard_tracked_prefixes / ampguard_tracked_prefixes_max\`
- TCP follow-ups per ladder TC answer (near 0: spoofed victims; near 1: real clients):
  \`rate(ampguard_tcp_followups_total[5m]) / rate(ampguard_truncated_total{reason="budget"}[5m])\`

\`deploy/prometheus/ampguard.rules.yml\` records these and alerts on them;
\`deploy/grafana/ampguard.json\` plots them.
`;
}
