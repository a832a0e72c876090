// The one prom-client registry (CONTRIBUTING.md rule 8): every metric of docs/metrics.md's table, help
// text on each, label values from closed unions only (never client addresses).
// Packet-path numbers are read from Counters at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BucketCounts, registerHistogram } from './histogram.js';
import type { Counters } from './counters.js';
import { httpErrors } from './http-errors.js';

/** What a process serving DNS reports (every worker, in cluster mode). */
export interface DataplaneSources {
  readonly counters: Counters;
  readonly backends: readonly { readonly name: string; readonly up: boolean; observeLatency: (s: number) => void }[];
  trackedPrefixes(): number;
  /** policy.large_response.max_tracked, for "tracked against capacity" */
  readonly maxTracked: number;
  /** TCP client connections open now */
  tcpConnections(): number;
  /** TCP queries waiting for an upstream connection now (docs/tcp.md) */
  tcpUpstreamQueued?(): number;
  /** prefixes (and aggregate networks) on rung 2 of the ladder now */
  ladderPrefixes?(): Readonly<Record<'prefix' | 'aggregate', number>>;
  /** real clients (TCP, small answers) whose prefix or network is on rung 2 or blocked now (policy/real-clients.ts) */
  collateralClients?(): Readonly<Record<'blocked' | 'tc', number>>;
  /** UDP socket I/O of this process (docs/performance.md); the cluster primary gives its workers' counts */
  readonly udpIoMode?: 'native' | 'dgram';
  udpIoProcesses?(): Readonly<Record<'native' | 'dgram', number>>;
  /** latency kept elsewhere (the cluster primary's sum of its workers' snapshots); default: hooked to observeLatency */
  latency?(): Iterable<readonly [string, BucketCounts]>;
}

export const LATENCY_BOUNDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** One latency histogram per backend, fed by its observeLatency. */
export function hookLatency(backends: DataplaneSources['backends']): Map<string, BucketCounts> {
  const latency = new Map<string, BucketCounts>();
  for (const b of backends) {
    const h = new BucketCounts(LATENCY_BOUNDS);
    latency.set(b.name, h);
    b.observeLatency = (s) => h.observe(s);
  }
  return latency;
}

/** What the process that owns the block set reports (the primary, in cluster mode). */
interface EnforcementSources {
  blockedClients(): number;
  /** blocks made so far, by enforcement mode */
  blocksByMode(): Readonly<Record<string, number>>;
  kernelErrors(): number;
  /** true while kernel enforcement is wanted but failing (blocks held in userspace) */
  enforcementDegraded(): boolean;
  /** entries the kernel set refused (invalid | full), kept in userspace (docs/enforcement.md) */
  kernelRejected?(): Readonly<Record<string, number>>;
  /** offenders not blocked at all (allowlist | invalid | full) */
  blocksRefused?(): Readonly<Record<string, number>>;
  /** the enforcement mode in effect (what block.mode auto chose) */
  enforcementMode?(): string;
  /** periodic kernel checks by result (ok | repaired | failed), docs/enforcement.md "Drift" */
  kernelChecks?(): Readonly<Record<string, number>>;
  /** what the checks and the start put back or removed (table | set | rule | members | expiry | leftover) */
  kernelRepairs?(): Readonly<Record<string, number>>;
  /** blocks waiting for the kernel set (enforce/kernel-queue.ts): a batch's worth normally, the whole backlog while the kernel fails */
  kernelQueueDepth?(): number;
}

/** the values of ampguard_enforcement_mode's label: every sink there is */
const ENFORCEMENT_MODES = ['ipset', 'nftables', 'userspace', 'off'] as const;


/** A counter whose value is copied from a plain number at scrape time. */
/** A counter with two labels, mirrored from a record keyed "a:b" (the counters' two-label form). */
function pairCounter(registry: Registry, name: string, help: string, labelNames: [string, string], read: () => Readonly<Record<string, number>>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of Object.entries(read())) {
        const colon = key.indexOf(':');
        this.inc({ [labelNames[0]]: key.slice(0, colon), [labelNames[1]]: key.slice(colon + 1) }, n);
      }
    },
  });
}

function mirroredCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelName: L | null,
  read: () => Readonly<Record<string, number>> | number,
): void {
  new Counter({
    name,
    help,
    labelNames: labelName ? [labelName] : [],
    registers: [registry],
    collect() {
      this.reset();
      const v = read();
      if (typeof v === 'number') this.inc(v);
      else for (const [label, n] of Object.entries(v)) this.inc({ [labelName as string]: label } as Partial<Record<L, string>>, n);
    },
  });
}

export function registerDataplaneMetrics(registry: Registry, src: DataplaneSources): void {
  const c = src.counters;
  mirroredCounter(registry, 'ampguard_queries_total', 'DNS queries received, by transport', 'proto', () => c.queries);
  mirroredCounter(registry, 'ampguard_responses_total', 'DNS responses sent to clients, by transport', 'proto', () => c.responses);
  mirroredCounter(registry, 'ampguard_truncated_total', 'TC=1 answers sent instead of a UDP reply: any (ANY over UDP) or size (reply too large)', 'reason', () => c.truncated);
  mirroredCounter(registry, 'ampguard_large_responses_total', 'UDP replies of at least policy.large_response.min_bytes charged to a prefix budget', null, () => c.largeResponses);
  mirroredCounter(registry, 'ampguard_query_bytes_total', 'bytes of DNS queries received, by transport', 'proto', () => c.queryBytes);
  mirroredCounter(registry, 'ampguard_response_bytes_total', 'bytes of DNS responses sent, by transport (UDP response/query bytes = amplification factor)', 'proto', () => c.responseBytes);
  mirroredCounter(registry, 'ampguard_dropped_total', 'queries or replies dropped, by reason', 'reason', () => c.dropped);
  mirroredCounter(registry, 'ampguard_upstream_rejected_total', 'datagrams or messages from a backend not taken as a reply: short (shorter than the header or the question), not_response (QR=0), unknown_id (late or stray), question_mismatch', 'reason', () => c.upstreamRejected);
  mirroredCounter(registry, 'ampguard_local_answers_total', 'answers ampguard made itself other than TC=1: notimp (an opcode other than QUERY, never forwarded)', 'reason', () => c.localAnswers);
  mirroredCounter(registry, 'ampguard_tcp_closed_total', 'client TCP connections closed by ampguard: buffer_full (answers not read, tcp.max_buffered_bytes), read_timeout, idle, framing (bad length), internal_error', 'reason', () => c.tcpClosed);
  mirroredCounter(registry, 'ampguard_tcp_upstream_failures_total', 'TCP connections to backends that failed (connect_timeout, connect_error, reset) or queries that waited tcp.upstream_queue_timeout_ms for one in vain (pool_full)', 'reason', () => c.tcpUpstreamFailures);
  mirroredCounter(registry, 'ampguard_tcp_followups_total', 'TCP follow-ups of prefixes on rung 2 of the ladder: answered TCP queries repeating a question truncated to the same prefix (a spoofed victim never sends one)', null, () => c.tcpFollowUps);
  mirroredCounter(registry, 'ampguard_would_truncate_total', 'block.mode off: replies the ladder would have replaced by TC=1 (the full reply was sent)', null, () => c.wouldTruncate);
  pairCounter(registry, 'ampguard_udp_io_errors_total', 'UDP socket errors recovered from, by side (listen: client-facing, upstream: to a backend) and reason (socket_error: an ICMP error, forged or real, cleared and read on; recv_error, send_error: a failing call; recv_truncated: a datagram longer than its slot; send_dropped: the send queue full)', ['side', 'reason'], () => c.udpIoErrors);
  pairCounter(registry, 'ampguard_escalations_total', 'offenders handed to enforcement, by level (prefix, or the aggregate network around it) and reason (no_followup: no TCP came back after the TC answers; over_budget: the ladder is off)', ['level', 'reason'], () => c.escalations);
  new Gauge({
    name: 'ampguard_ladder_prefixes',
    help: 'keys on rung 2 of the ladder (over budget, large replies answered with TC=1), by level: prefix or aggregate',
    labelNames: ['level'],
    registers: [registry],
    collect() {
      const n = src.ladderPrefixes?.() ?? { prefix: 0, aggregate: 0 };
      this.set({ level: 'prefix' }, n.prefix);
      this.set({ level: 'aggregate' }, n.aggregate);
    },
  });
  new Gauge({
    name: 'ampguard_collateral_clients',
    help: 'real clients (a TCP query answered, or small UDP answers) whose prefix or network is blocked, or on rung 2 (tc), now',
    labelNames: ['state'],
    registers: [registry],
    // each worker sees its own clients (the kernel spreads them by address): the sum is the figure
    aggregator: 'sum',
    collect() {
      const n = src.collateralClients?.() ?? { blocked: 0, tc: 0 };
      this.set({ state: 'blocked' }, n.blocked);
      this.set({ state: 'tc' }, n.tc);
    },
  });
  new Gauge({
    name: 'ampguard_udp_io_mode',
    help: 'processes serving UDP with each socket I/O mode: native (batched recvmmsg/sendmmsg addon) or dgram (node:dgram fallback)',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      const n = src.udpIoProcesses?.() ?? { native: src.udpIoMode === 'native' ? 1 : 0, dgram: src.udpIoMode === 'dgram' ? 1 : 0 };
      this.set({ mode: 'native' }, n.native);
      this.set({ mode: 'dgram' }, n.dgram);
    },
  });
  new Gauge({
    name: 'ampguard_tcp_connections',
    help: 'client TCP connections open (bounded by tcp.max_connections)',
    registers: [registry],
    collect() {
      this.set(src.tcpConnections());
    },
  });
  new Gauge({
    name: 'ampguard_tcp_upstream_queued',
    help: 'TCP queries waiting for an upstream connection to carry them (bounded by tcp.max_in_flight_per_client per client prefix; each waits at most tcp.upstream_queue_timeout_ms)',
    registers: [registry],
    collect() {
      this.set(src.tcpUpstreamQueued?.() ?? 0);
    },
  });
  new Gauge({
    name: 'ampguard_tracked_prefixes',
    help: 'prefixes with a large-response budget in the table (bounded by policy.large_response.max_tracked)',
    registers: [registry],
    collect() {
      this.set(src.trackedPrefixes());
    },
  });
  new Gauge({
    name: 'ampguard_tracked_prefixes_max',
    help: 'policy.large_response.max_tracked: the most prefixes the budget table holds',
    registers: [registry],
    collect() {
      this.set(src.maxTracked);
    },
  });
  new Gauge({
    name: 'ampguard_backend_up',
    help: '1 when the backend passes its health checks',
    labelNames: ['backend'],
    registers: [registry],
    collect() {
      for (const b of src.backends) this.set({ backend: b.name }, b.up ? 1 : 0);
    },
  });
  const series = src.latency?.bind(src) ?? ((latency) => () => latency.entries())(hookLatency(src.backends));
  registerHistogram(registry, 'ampguard_backend_latency_seconds', 'time from forwarding a UDP query to the backend reply', 'backend', series);
  collectDefaultMetrics({ register: registry, prefix: 'ampguard_process_' });
}

/** why the cluster primary replaced a worker: it exited (crash), or it stopped reporting (hung, operator/health.ts) */
export type WorkerRestartReason = 'crash' | 'hung';

/** The cluster primary's own numbers. */
export function registerWorkerMetrics(registry: Registry, restarts: () => Readonly<Record<WorkerRestartReason, number>>): void {
  mirroredCounter(registry, 'ampguard_worker_restarts_total', 'workers the cluster primary replaced, by reason: crash (the worker exited) or hung (no report for a few seconds: stopped, or its event loop blocked; killed and replaced)', 'reason', restarts);
}

interface FleetSources {
  connected(): boolean;
  peers(): number;
  messages(): Readonly<Record<'in' | 'out' | 'rejected', number>>;
}

/** With fleet.nats only (the process that owns the enforcer): the NATS link (docs/fleet.md). */
export function registerFleetMetrics(registry: Registry, src: FleetSources): void {
  new Gauge({
    name: 'ampguard_fleet_connected',
    help: '1 while the fleet link to NATS is up; 0 while the node judges on its own evidence alone',
    registers: [registry],
    collect() {
      this.set(src.connected() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ampguard_fleet_peers',
    help: 'other nodes of the site heard from in the last 5 s (each sends a heartbeat every second)',
    registers: [registry],
    collect() {
      this.set(src.peers());
    },
  });
  mirroredCounter(registry, 'ampguard_fleet_messages_total', 'fleet messages by direction: out (published), in (accepted from peers), rejected (unsealed, bad seal, stale, replayed or malformed: dropped)', 'direction', src.messages);
}

export function registerEnforcementMetrics(registry: Registry, src: EnforcementSources): void {
  // the HTTP listener lives in the process that owns the block set (the primary in cluster mode)
  mirroredCounter(registry, 'ampguard_http_errors_total', 'HTTP requests on metrics.listen refused as bad_request (unparseable, 400) or failed with internal_error (500)', 'reason', () => httpErrors);
  mirroredCounter(registry, 'ampguard_blocks_total', 'prefixes put over budget into a block, by enforcement mode (off: would have blocked)', 'mode', () => src.blocksByMode());
  mirroredCounter(registry, 'ampguard_kernel_errors_total', 'kernel set commands (ipset, nft) that failed; each is retried', null, () => src.kernelErrors());
  mirroredCounter(registry, 'ampguard_kernel_rejected_total', 'block entries the kernel set refused, by reason (full: block.max_elements reached; invalid: an element the kernel cannot hold); they stay blocked in userspace only', 'reason', () => src.kernelRejected?.() ?? { invalid: 0, full: 0 });
  mirroredCounter(registry, 'ampguard_blocks_refused_total', 'offenders not blocked: allowlist (the prefix covers an allowlisted address), invalid (no client has that address), full (block.max_elements are blocked); the tripping reply is still dropped', 'reason', () => src.blocksRefused?.() ?? { allowlist: 0, invalid: 0, full: 0 });
  mirroredCounter(registry, 'ampguard_kernel_checks_total', 'periodic checks of the kernel sets, DROP rules and nft table against the block table, by result: ok, repaired (something was put back), failed (the kernel could not be read or repaired)', 'result', () => src.kernelChecks?.() ?? { ok: 0, repaired: 0, failed: 0 });
  mirroredCounter(registry, 'ampguard_kernel_repairs_total', 'kernel state put back by the checks (table: the nft table or chain; set; rule: a DROP rule; members: block entries the kernel had lost; expiry: entries whose kernel expiry was refreshed) or removed at start (leftover: sets, rules or table of the other block.mode)', 'what', () => src.kernelRepairs?.() ?? { table: 0, set: 0, rule: 0, members: 0, expiry: 0, leftover: 0 });
  new Gauge({
    name: 'ampguard_enforcement_mode',
    help: 'the enforcement mode in effect, 1 on its mode label (ipset, nftables, userspace, off) and 0 on the others: what block.mode auto chose',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      const now = src.enforcementMode?.() ?? '';
      for (const m of ENFORCEMENT_MODES) this.set({ mode: m }, m === now ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ampguard_enforcement_degraded',
    help: '1 while kernel enforcement is configured but failing and blocks are held in userspace only',
    registers: [registry],
    collect() {
      this.set(src.enforcementDegraded() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ampguard_kernel_queue_depth',
    help: 'blocks waiting to be added to the kernel set: a batch for a few ms normally, every block made while the kernel fails (at most block.max_elements)',
    registers: [registry],
    collect() {
      this.set(src.kernelQueueDepth?.() ?? 0);
    },
  });
  new Gauge({
    name: 'ampguard_blocked_clients',
    help: 'prefixes currently blocked',
    registers: [registry],
    collect() {
      this.set(src.blockedClients());
    },
  });
}
