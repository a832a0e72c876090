// The fleet of the process that owns the enforcer (the cluster primary, or the
// single process of main.ts): what it publishes and what it does with what its
// peers say (docs/fleet.md). Reads fleet.*, block.timeout and the budgets'
// capacities. Feeds ampguard_fleet_connected, ampguard_fleet_peers and
// ampguard_fleet_messages_total.
//   - local evidence (the workers' charges and follow-ups, or this process's)
//     goes into a batch published every FLUSH_MS; peers' evidence is handed to
//     `deliver` as debits, as the workers' own are relayed to each other;
//   - a block the ladder makes here travels as evidence (`x`): the others
//     spend the key's budget, so they answer it with TC at once and block it
//     only when their own judging (with the site's follow-ups) says so;
//   - a block or unblock by hand is a verdict: into the site's KV bucket, and
//     applied by every node to its enforcer (userspace and kernel set).
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RuntimeConfig, PolicySettings } from '../config/compile.js';
import { BlockRefusedError, type Enforcer } from '../enforce/enforcer.js';
import { prefixAddress } from '../enforce/sink.js';
import { registerFleetMetrics } from '../metrics/registry.js';
import { readToken } from '../operator/token.js';
import type { BudgetDeltas, BudgetTable } from '../policy/budgets.js';
import { EvidenceBatch, type Evidence } from './evidence.js';
import { FleetLink } from './link.js';
import type { Verdict } from './verdict.js';

/** how often local evidence is published: a flood spends a budget in well under a second (docs/fleet.md, "Measured") */
const FLUSH_MS = 25;

interface FleetParts {
  readonly runtime: RuntimeConfig;
  readonly enforcer: Enforcer;
  readonly settings: () => PolicySettings;
  /** fleet.key_file as a path (resolved against the config file's directory) */
  readonly keyFile: string;
  /** peers' evidence, as debits: to every worker, or into this process's budgets */
  readonly deliver: (d: BudgetDeltas) => void;
  readonly registry: Registry;
  readonly log: Logger;
  readonly clock: () => number;
}

export interface Fleet {
  /** local evidence goes here */
  readonly batch: EvidenceBatch;
  readonly link: FleetLink;
  close(): Promise<void>;
}

/** Starts the fleet link when fleet.nats is set; null when the node stands alone. Throws, naming the key, when the key file cannot be read. */
export function startFleet(p: FleetParts): Fleet | null {
  const cfg = p.runtime.source.fleet;
  if (cfg.nats.length === 0) return null;
  let key: Buffer;
  try {
    key = Buffer.from(readToken(p.keyFile), 'utf8');
  } catch (err) {
    throw new Error(`fleet.key_file: ${(err as Error).message}`);
  }
  const node = cfg.node || hostname();
  const log = p.log.child({ module: 'fleet' });
  const e = p.enforcer;
  let applying = false;
  const link = new FleetLink(
    { servers: cfg.nats, site: cfg.site, node, key, maxAgeMs: p.settings().blockTimeoutMs, log, clock: p.clock, wallClock: Date.now },
    {
      evidence: (ev) => p.deliver(asDebits(ev, p.settings())),
      verdict: (v, from) => {
        applying = true;
        try {
          applyVerdict(e, v, p.settings(), log, from);
        } finally {
          applying = false;
        }
      },
    },
  );
  const batch = new EvidenceBatch();
  const previous = e.onChange;
  e.onChange = (c) => {
    previous?.(c);
    if (applying) return; // a verdict from the site being applied here: not ours to publish again
    const at = Date.now();
    if (c.kind === 'unblock') link.verdict({ op: 'unblock', p: c.prefix, at, exp: at + p.settings().blockTimeoutMs });
    else if (c.manual) link.verdict({ op: 'block', p: c.prefix, at, exp: at + c.ttlMs });
    else batch.blocked(c.prefix);
  };
  const flush = setInterval(() => {
    if (batch.size === 0) return;
    for (const body of batch.take()) link.publish(body);
  }, FLUSH_MS);
  flush.unref();
  registerFleetMetrics(p.registry, { connected: () => link.connected, peers: () => link.peerCount(), messages: () => link.messages });
  link.start();
  return {
    batch,
    link,
    async close() {
      clearInterval(flush);
      e.onChange = previous;
      await link.close();
    },
  };
}

/**
 * A peer's evidence as the cluster's debits; a prefix it blocked costs a whole
 * prefix bucket (its next large reply here gets TC). Not its network's: the
 * network's own charges come in `a`, and the prefix's key is not a network's
 * (charged there, it made an entry no reply ever looks up, which could push a
 * real network out of the table).
 */
export function asDebits(ev: Evidence, s: PolicySettings): BudgetDeltas {
  const x = ev.x ?? [];
  if (x.length === 0) return { d: ev.d, a: ev.a ?? [], f: ev.f ?? [] };
  return {
    d: [...ev.d, ...x.map((k) => [k, s.prefixBudget.capacity] as const)],
    a: ev.a ?? [],
    f: ev.f ?? [],
  };
}

/**
 * Debits into one process's budgets (main.ts; a worker does the same with the
 * primary's `debits`); returns the peers' TCP follow-ups that matched a TC
 * answer of this process (counted in ampguard_tcp_followups_total).
 */
export function debitAll(budgets: BudgetTable, d: BudgetDeltas, s: PolicySettings, now: number): number {
  for (const [prefix, cost] of d.d) budgets.debit(prefix, cost, s, now);
  for (const [key, cost] of d.a ?? []) budgets.debit(key, cost, s, now, 'aggregate');
  let matched = 0;
  for (const [key, question, level] of d.f ?? []) if (budgets.followUp(level === 0 ? 'prefix' : 'aggregate', key, question, s, now, true)) matched++;
  return matched;
}

function applyVerdict(e: Enforcer, v: Verdict, s: PolicySettings, log: Logger, from: string): void {
  const address = prefixAddress(v.p);
  const family = address.includes(':') ? 6 : 4;
  const slash = v.p.indexOf('/');
  const bits = slash < 0 ? (family === 4 ? 32 : 128) : Number(v.p.slice(slash + 1));
  const ownLength = bits === (family === 4 ? s.prefixV4 : s.prefixV6);
  try {
    if (v.op === 'block') {
      const left = v.exp - Date.now();
      if (left <= 0) return;
      // a network by hand (`blocks add NET/LEN`) is a network here too, in the kernel's -net set
      if (ownLength) e.blockByHand(address, left);
      else e.blockNetworkByHand(address, family, bits, left);
    } else {
      // the prefix only: the node where the operator acted lifts the networks holding it and
      // sends each as a verdict of its own; lifting them here too would send them again
      const done = ownLength ? e.unblockAddress(address, { networks: false }) : e.unblockNetwork(address, family, bits);
      done.catch((err: Error) => log.warn({ prefix: v.p, from, err: err.message }, 'fleet: unblock from the site failed here'));
    }
    log.info({ prefix: v.p, op: v.op, from }, 'fleet: site verdict applied');
  } catch (err) {
    if (!(err instanceof BlockRefusedError)) throw err;
    log.warn({ prefix: v.p, from, err: err.message }, 'fleet: site verdict refused here');
  }
}
