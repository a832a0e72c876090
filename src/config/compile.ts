// Turns a validated Config into the runtime forms the packet path uses: parsed
// addresses, rates in units per millisecond, CIDR matchers (CONTRIBUTING.md rule 13).
import { availableParallelism } from 'node:os';
import type { Config } from './schema.js';
import { parseHostPort, type HostPort } from './address.js';
import { parseRate, type Rate } from './rate.js';
import { parseCidr, type Cidr } from '../net/cidr.js';
import type { ConfigIssue } from './load.js';

/** policy.ladder.* compiled: how the ladder judges a key on rung 2 (policy/ladder.ts, docs/defence.md) */
export interface LadderSettings {
  /** false: today's one step, over budget means blocked */
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly minTc: number;
  /** follow-ups / TC answers below this after minTc answers: escalate */
  readonly followUpShare: number;
  /** a key on rung 2 comes down after this long without a truncated reply */
  readonly quietMs: number;
}

export interface BackendSpec {
  readonly name: string;
  readonly address: HostPort;
  readonly weight: number;
  readonly proxyProtocol: boolean;
}

/** A token bucket's shape: capacity and refill in the rate's unit (bytes, or replies). */
export interface BudgetRule {
  readonly capacity: number;
  readonly perMs: number;
  /** true: costs are reply bytes; false: each reply costs 1 */
  readonly bytes: boolean;
}

/** The budget of a network around a prefix (policy.large_response.aggregate, and its wide level). */
interface NetworkBudget {
  readonly enabled: boolean;
  readonly prefixV4: number;
  readonly prefixV6: number;
  /** the per-prefix rule times the multiplier */
  readonly rule: BudgetRule;
}

interface AggregateSettings extends NetworkBudget {
  /** the wider network (/16, /32) around the aggregate; its lengths are 0 for a family it does not apply to */
  readonly wide: NetworkBudget;
}

/** The thresholds SIGHUP may change; stages read them through one mutable holder. */
export interface PolicySettings {
  anyToTcp: boolean;
  truncateAbove: number;
  largeMinBytes: number;
  /** the rate as configured, for log lines */
  rateText: string;
  burst: number;
  prefixV4: number;
  prefixV6: number;
  /** the per-prefix bucket: burst x truncate_above bytes (or burst replies), refilled at the rate */
  prefixBudget: BudgetRule;
  aggregate: AggregateSettings;
  ladder: LadderSettings;
  /** block.mode off: the ladder and the budgets report what they would do and change no reply */
  dryRun: boolean;
  allowlist: readonly Cidr[];
  blockTimeoutMs: number;
  backendTimeoutMs: number;
  backendTimeoutAction: 'servfail' | 'drop';
}

export interface RuntimeConfig {
  readonly source: Config;
  readonly listenUdp: readonly HostPort[];
  readonly listenTcp: readonly HostPort[];
  readonly backends: readonly BackendSpec[];
  readonly metricsListen: HostPort;
  readonly policy: PolicySettings;
  /** processes serving DNS: `workers`, or one per CPU when it is 0 */
  readonly workers: number;
}

type CompileResult = { ok: true; runtime: RuntimeConfig } | { ok: false; issues: ConfigIssue[] };

/** First `nameserver` line of a resolv.conf text, as "IP:53". */
export function resolvConfBackend(resolvConf: string): string | null {
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) {
      const ip = (m[1] as string).split('%')[0] as string;
      return ip.includes(':') ? `[${ip}]:53` : `${ip}:53`;
    }
  }
  return null;
}

export function compilePolicy(config: Config): PolicySettings {
  const lr = config.policy.large_response;
  const rate = parseRate(lr.rate) as Rate; // validated by the schema
  const capacity = rate.unit === 'bytes' ? lr.burst * config.policy.truncate_above : lr.burst;
  const prefixBudget: BudgetRule = { capacity, perMs: rate.perMs, bytes: rate.unit === 'bytes' };
  const agg = lr.aggregate;
  const ladder = config.policy.ladder;
  return {
    anyToTcp: config.policy.any_to_tcp,
    truncateAbove: config.policy.truncate_above,
    largeMinBytes: lr.min_bytes,
    rateText: lr.rate,
    burst: lr.burst,
    prefixV4: lr.prefix_v4,
    prefixV6: lr.prefix_v6,
    prefixBudget,
    aggregate: {
      enabled: agg.enabled,
      prefixV4: agg.prefix_v4,
      prefixV6: agg.prefix_v6,
      rule: { capacity: capacity * agg.multiplier, perMs: rate.perMs * agg.multiplier, bytes: prefixBudget.bytes },
      wide: {
        enabled: agg.enabled && agg.wide.enabled,
        // a wide network no wider than the aggregate would only charge the same replies twice
        prefixV4: agg.wide.prefix_v4 < agg.prefix_v4 ? agg.wide.prefix_v4 : 0,
        prefixV6: agg.wide.prefix_v6 < agg.prefix_v6 ? agg.wide.prefix_v6 : 0,
        rule: { capacity: capacity * agg.wide.multiplier, perMs: rate.perMs * agg.wide.multiplier, bytes: prefixBudget.bytes },
      },
    },
    ladder: {
      enabled: ladder.enabled,
      windowMs: ladder.window_ms,
      minTc: ladder.min_tc,
      followUpShare: ladder.followup_share,
      quietMs: ladder.quiet_ms,
    },
    dryRun: config.block.mode === 'off',
    allowlist: config.block.allowlist.map((c) => parseCidr(c) as Cidr),
    blockTimeoutMs: config.block.timeout * 1000,
    backendTimeoutMs: config.backend_timeout_ms,
    backendTimeoutAction: config.backend_timeout_action,
  };
}

export function compileConfig(config: Config, resolvConf: string): CompileResult {
  let backendEntries = config.backends;
  if (!backendEntries) {
    const fallback = resolvConfBackend(resolvConf);
    if (!fallback) return { ok: false, issues: [{ path: 'backends', message: 'not set, and /etc/resolv.conf names no nameserver' }] };
    backendEntries = [{ address: fallback, weight: 1, proxy_protocol: false }];
  }
  const backends = backendEntries.map((b) => ({
    name: b.address,
    address: parseHostPort(b.address) as HostPort,
    weight: b.weight,
    proxyProtocol: b.proxy_protocol,
  }));
  const issues: ConfigIssue[] = [];
  const names = new Set<string>();
  backends.forEach((b, i) => {
    if (names.has(b.name)) issues.push({ path: `backends.${i}.address`, message: `duplicate backend ${b.name}` });
    names.add(b.name);
  });
  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    runtime: {
      source: config,
      listenUdp: config.listen.udp.map((a) => parseHostPort(a) as HostPort),
      listenTcp: config.listen.tcp.map((a) => parseHostPort(a) as HostPort),
      backends,
      metricsListen: parseHostPort(config.metrics.listen) as HostPort,
      policy: compilePolicy(config),
      workers: config.workers === 0 ? availableParallelism() : config.workers,
    },
  };
}
