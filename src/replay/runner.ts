// One configuration's policy over a replayed capture: the live path's own code
// (pipeline/stages.ts, the BudgetTable and its once-a-second judging, the
// Enforcer with a sink that keeps nothing outside the process) driven by the
// capture's clock instead of sockets and timers. Each query and reply is
// decided by the functions pipeline/udp-path.ts uses (judgeQuery,
// judgeUdpReply), and what the report needs is kept in tables bounded like the
// policy's own (docs/replay.md).
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { compilePolicy, type PolicySettings } from '../config/compile.js';
import { Counters } from '../metrics/counters.js';
import { BudgetTable, type BudgetLevel } from '../policy/budgets.js';
import { ladderTick } from '../policy/ladder-tick.js';
import { prefixKey } from '../policy/prefix.js';
import type { PolicyEnv } from '../policy/env.js';
import { Enforcer } from '../enforce/enforcer.js';
import { processOnlySink } from '../enforce/sink.js';
import { blockedClient } from '../policy/blocked-client.js';
import { AS_IS, TO_BACKEND, judgeQuery, judgeUdpReply, runQueryStages, tcpAnswered } from '../pipeline/stages.js';
import type { QueryContext } from '../policy/context.js';
import type { Offender } from '../policy/verdict.js';
import { IPV4_NAME_SLOTS } from '../net/ipv4-names.js';
import { ReflectorPolicy, type ReflectorOutcome } from './reflection.js';

interface PrefixStat {
  queries: number;
  /** UDP query bytes from the prefix */
  bytesIn: number;
  /** UDP reply bytes to the prefix in the capture */
  bytesBefore: number;
  /** UDP reply bytes the policy would have sent */
  bytesAfter: number;
  /** DNS messages it sent over TCP */
  tcp: number;
  /** highest rung it reached: 1, 2, or 3 (blocked) */
  rung: number;
  /** captured UDP replies paired with its queries */
  replies: number;
  /** of those, answers (NOERROR, NXDOMAIN; no TC) below policy.large_response.min_bytes (collateral.ts) */
  small: number;
  /** its queries that would have had no answer: dropped as blocked, or their reply dropped (in a dry run: would have been) */
  lost: number;
}

interface BlockRecord {
  /** capture time, ms since the epoch */
  readonly at: number;
  readonly prefix: string;
  readonly address: string;
  readonly level: BudgetLevel;
  /** no_followup: judged on the ladder; over_budget: the ladder is off */
  readonly cause: string;
  readonly charged: number;
  /** blocked, or (block.mode off) only logged as "would block" */
  readonly mode: 'blocked' | 'would_block';
}

interface RungRecord {
  readonly at: number;
  readonly key: string;
  readonly level: BudgetLevel;
  readonly rung: 1 | 2;
}

/** what a run learned; the report is made from it */
export interface RunResult {
  readonly settings: PolicySettings;
  readonly dryRun: boolean;
  readonly counters: Counters;
  /** UDP reply bytes the policy would have sent */
  readonly bytesAfter: number;
  readonly repliesAfter: number;
  readonly unpairedResponses: number;
  readonly unansweredQueries: number;
  readonly pairingOverflow: number;
  readonly rungUps: Record<BudgetLevel, number>;
  readonly rungDowns: Record<BudgetLevel, number>;
  /** distinct keys that reached rung 2, by level */
  readonly onRung2: Record<BudgetLevel, number>;
  /** the first rung changes (bounded list), in capture order */
  readonly rungEvents: readonly RungRecord[];
  readonly blocks: readonly BlockRecord[];
  readonly blocksNotListed: number;
  readonly refused: Readonly<Record<'allowlist' | 'invalid' | 'full', number>>;
  readonly prefixes: ReadonlyMap<string, PrefixStat>;
  /** TCP messages per aggregate network (for aggregate blocks) */
  readonly aggregateTcp: ReadonlyMap<string, number>;
  /** prefixes that sent TCP, whether or not their messages parsed */
  readonly tcpSenders: ReadonlySet<string>;
  /** the victim's side: what this policy would have let each reflector send (reflection.ts) */
  readonly reflectors: ReadonlyMap<string, ReflectorOutcome>;
  readonly reflectorsNotSimulated: number;
}

/**
 * The pairing key of a UDP exchange, from the client port, the DNS ID and 20
 * bits of the client address: 30 bits, so V8 keeps it a small integer, which a
 * Map hashes without allocating. Two exchanges may share a key; a reply is
 * paired only when address, port and ID all match (udpReply).
 */
export function pairKey(port: number, id: number, addressBits: number): number {
  return (Math.imul(port, 0x9e3779b1) ^ (id << 13) ^ Math.imul(addressBits, 0x85ebca6b)) & 0x3fffffff;
}

interface Pending {
  readonly ctx: QueryContext;
  readonly port: number;
  readonly at: number;
  /** the client's prefix statistics, which its reply adds to without a second lookup */
  readonly stat: PrefixStat;
}

const RUNG_EVENTS = 1000;
const SILENT = pino({ level: 'silent' });

export class PolicyRunner {
  readonly settings: PolicySettings;
  private readonly counters = new Counters();
  private readonly budgets: BudgetTable;
  private readonly enforcer: Enforcer;
  private readonly env: PolicyEnv<Counters>;
  /** the dry run's would-be blocks in place of the blocks, to count the queries they would have cost */
  private readonly wouldEnv: PolicyEnv<Counters>;
  /** set when the reply being judged made a block (or a would-be block) */
  private tripped = false;
  private now = 0;
  /** by pairKey(): small integers hash faster than strings */
  private readonly pending = new Map<number, Pending>();
  private readonly maxPending: number;
  private readonly maxTracked: number;
  private readonly maxBlocks: number;
  private bytesAfter = 0;
  private repliesAfter = 0;
  private unpaired = 0;
  private unanswered = 0;
  private overflow = 0;
  private readonly rungUps: Record<BudgetLevel, number> = { prefix: 0, aggregate: 0 };
  private readonly rungDowns: Record<BudgetLevel, number> = { prefix: 0, aggregate: 0 };
  private readonly rung2: Record<BudgetLevel, Set<string>> = { prefix: new Set(), aggregate: new Set() };
  private readonly rungEvents: RungRecord[] = [];
  private readonly blocks: BlockRecord[] = [];
  private blocksNotListed = 0;
  private readonly prefixes = new Map<string, PrefixStat>();
  private readonly aggregateTcp = new Map<string, number>();
  private readonly tcpSenders = new Set<string>();
  private readonly reflection: ReflectorPolicy;
  /** clientStat(): [address, its PrefixStat] by decoder slot; emptied when the prefixes are trimmed */
  private readonly statBySlot: (string | PrefixStat | undefined)[] = new Array<string | PrefixStat | undefined>(2 * IPV4_NAME_SLOTS).fill(undefined);

  constructor(readonly config: Config) {
    this.settings = compilePolicy(config);
    const s = this.settings;
    this.maxTracked = config.policy.large_response.max_tracked;
    this.maxBlocks = config.block.max_elements;
    // as many queries as the live path could have in flight to its backends
    this.maxPending = config.max_in_flight * Math.max(1, config.backends?.length ?? 1);
    this.budgets = new BudgetTable(this.maxTracked);
    this.reflection = new ReflectorPolicy(s, config.block.max_elements, this.maxTracked);
    const clock = (): number => this.now;
    // every enforcing mode makes the same decisions as userspace: the kernel only holds the same table
    this.enforcer = new Enforcer(processOnlySink(s.dryRun ? 'off' : 'userspace'), config.block.max_elements, () => s, SILENT, clock, clock);
    this.env = { settings: s, budgets: this.budgets, blocks: this.enforcer.blocks, counters: this.counters };
    this.wouldEnv = { ...this.env, blocks: this.enforcer.wouldBlocked };
    this.budgets.onRung = (key, rung, level) => {
      if (rung === 2) {
        this.rungUps[level]++;
        if (this.rung2[level].size < this.maxTracked) this.rung2[level].add(key);
        if (level === 'prefix') {
          const p = this.prefixes.get(key);
          if (p && p.rung < 2) p.rung = 2;
        }
      } else {
        this.rungDowns[level]++;
      }
      if (this.rungEvents.length < RUNG_EVENTS) this.rungEvents.push({ at: this.now, key, level, rung });
    };
  }

  private stat(prefix: string): PrefixStat {
    let p = this.prefixes.get(prefix);
    if (p === undefined) {
      if (this.prefixes.size >= this.maxTracked) this.trimPrefixes();
      p = { queries: 0, bytesIn: 0, bytesBefore: 0, bytesAfter: 0, tcp: 0, rung: 1, replies: 0, small: 0, lost: 0 };
      this.prefixes.set(prefix, p);
    }
    return p;
  }

  /**
   * The statistics of an IPv4 client's prefix, through the decoder's address
   * cache slot (net/ipv4-names.ts): address and statistics side by side in one array,
   * one memory read where the Map costs three, which is most of a packet's time
   * with many clients (docs/replay.md, speed).
   */
  private clientStat(address: string, family: 4 | 6, slot: number): PrefixStat {
    if (slot < 0) return this.stat(this.prefixOf(address, family));
    const bySlot = this.statBySlot;
    if (bySlot[2 * slot] === address) return bySlot[2 * slot + 1] as PrefixStat;
    const p = this.stat(this.prefixOf(address, family));
    bySlot[2 * slot] = address;
    bySlot[2 * slot + 1] = p;
    return p;
  }

  /** keeps the prefixes that lost answers (the collateral), then the half that was sent the most bytes: the ranking is what the report shows */
  private trimPrefixes(): void {
    const keep = [...this.prefixes].sort((a, b) => Number(b[1].lost > 0) - Number(a[1].lost > 0) || b[1].bytesBefore - a[1].bytesBefore || b[1].tcp - a[1].tcp).slice(0, this.maxTracked >> 1);
    this.prefixes.clear();
    for (const [k, v] of keep) this.prefixes.set(k, v);
    this.statBySlot.fill(undefined);
  }

  private prefixOf(address: string, family: 4 | 6): string {
    return prefixKey(address, family, this.settings.prefixV4, this.settings.prefixV6);
  }

  /**
   * Told of each pending query this runner lets go of (answered, timed out,
   * replaced, evicted), so the replay can reuse its copy (query-pool.ts).
   */
  release: (ctx: QueryContext) => void = () => undefined;

  /**
   * A UDP query at `now`; `key` (pairKey) pairs it with its reply; `slot` is the
   * decoder's (Decoded.slot). True when the query waits for its reply: this
   * runner then holds `ctx` until it calls release().
   */
  udpQuery(ctx: QueryContext, key: number, port: number, now: number, slot = -1): boolean {
    this.now = now;
    const c = this.counters;
    c.queries.udp++;
    c.queryBytes.udp += ctx.query.length;
    const p = this.clientStat(ctx.clientAddress, ctx.family, slot);
    p.queries++;
    p.bytesIn += ctx.query.length;
    if (port === 0) {
      c.dropped.bad_source++;
      return false;
    }
    const outcome = judgeQuery(ctx, this.env, now);
    if (outcome === null) {
      p.lost++; // the query stages drop only a blocked client's query
      return false;
    }
    // a dry run drops nothing: count what its would-be blocks would have dropped
    if (this.settings.dryRun && blockedClient(ctx, this.wouldEnv, now) !== null) p.lost++;
    if (outcome !== TO_BACKEND) {
      this.sent(p, outcome.length);
      return false;
    }
    // a retransmission with the same port and ID replaces the older one, at the back of the queue;
    // so does, very rarely, another client whose key is the same (then the older is never answered)
    const older = this.pending.get(key);
    if (older !== undefined) {
      this.pending.delete(key);
      this.release(older.ctx);
      this.unanswered++;
    }
    if (this.pending.size >= this.maxPending) {
      const [oldest, q] = this.pending.entries().next().value as [number, Pending];
      this.pending.delete(oldest);
      this.release(q.ctx);
      this.overflow++;
    }
    this.pending.set(key, { ctx, port, at: now, stat: p });
    return true;
  }

  /** A malformed UDP query (the live path drops it before any stage). */
  malformed(address: string, family: 4 | 6, bytes: number, now: number): void {
    this.now = now;
    const c = this.counters;
    c.queries.udp++;
    c.queryBytes.udp += bytes;
    c.dropped.malformed++;
    const p = this.stat(this.prefixOf(address, family));
    p.queries++;
    p.bytesIn += bytes;
  }

  /**
   * A UDP reply of `bytes` (its length on the wire) to the client of `key`, its
   * `port` and DNS `id`; `answer`: the captured reply answers the question (no TC
   * stand-in, NOERROR or NXDOMAIN), for the small answers of collateral.ts.
   */
  udpReply(key: number, port: number, id: number, bytes: number, address: string, family: 4 | 6, now: number, answer = true): void {
    this.now = now;
    const q = this.pending.get(key);
    if (q === undefined || q.ctx.clientAddress !== address || q.port !== port || q.ctx.parsed.id !== id) {
      // no query in the capture, or one the policy answered itself, dropped, or timed out
      this.stat(this.prefixOf(address, family)).bytesBefore += bytes;
      this.unpaired++;
      return;
    }
    // the query's statistics, unless a trim has dropped them since (then they are ranked among the least)
    const p = q.stat;
    p.bytesBefore += bytes;
    p.replies++;
    if (answer && bytes < this.settings.largeMinBytes) p.small++;
    this.pending.delete(key);
    this.judgeReply(q.ctx, p, bytes, now);
    // only once the stages are done with it: its copy may serve the next query
    this.release(q.ctx);
  }

  /** What the live path does with a backend's reply (pipeline/udp-path.ts), the same function deciding. */
  private judgeReply(ctx: QueryContext, p: PrefixStat, bytes: number, now: number): void {
    this.tripped = false;
    const outcome = judgeUdpReply(ctx, bytes, this.env, now, this.onOffender);
    // the reply that tripped a block is dropped (in a dry run: would have been)
    if (outcome === null || this.tripped) p.lost++;
    if (outcome !== null) this.sent(p, outcome === AS_IS ? bytes : outcome.length);
  }

  /** A DNS message over TCP from a client (a query: the ladder counts it as a follow-up). */
  tcpQuery(ctx: QueryContext, now: number): void {
    this.now = now;
    const c = this.counters;
    c.queries.tcp++;
    c.queryBytes.tcp += ctx.query.length;
    this.countTcp(ctx.clientAddress, ctx.family);
    // a query the live path would forward counts as answered by the backend: the capture holds its answer
    if (runQueryStages(ctx, this.env, now).kind === 'forward') tcpAnswered(ctx, this.env, now);
  }

  /** Any TCP segment from a client to the DNS port (a SYN too): it can complete a handshake. */
  tcpSender(address: string, family: 4 | 6): void {
    const prefix = this.prefixOf(address, family);
    if (!this.tcpSenders.has(prefix) && this.tcpSenders.size < this.maxTracked) this.tcpSenders.add(prefix);
    const agg = this.settings.aggregate;
    const net = prefixKey(address, family, agg.prefixV4, agg.prefixV6);
    if (!this.aggregateTcp.has(net) && this.aggregateTcp.size < this.maxTracked) this.aggregateTcp.set(net, 0);
  }

  /** An answer from `reflector` to `target` whose query is not in the capture: as if the reflector ran this policy. */
  reflected(reflector: string, target: string, family: 4 | 6, frame: Buffer, at: number, length: number, wireLength: number, now: number): void {
    this.now = now;
    this.reflection.answer(reflector, target, family, frame, at, length, wireLength, now);
  }

  /** true when a tick now would change nothing: no key on rung 2, no query waiting (the replay skips such ticks) */
  idle(): boolean {
    return this.pending.size === 0 && this.budgets.truncatingCount('prefix') === 0 && this.budgets.truncatingCount('aggregate') === 0 && this.reflection.idle();
  }

  /** A TCP answer of `bytes` to a client: counted, never charged (as live). */
  tcpReply(bytes: number): void {
    this.counters.responses.tcp++;
    this.counters.responseBytes.tcp += bytes;
  }

  private countTcp(address: string, family: 4 | 6): void {
    this.stat(this.prefixOf(address, family)).tcp++;
    const agg = this.settings.aggregate;
    const net = prefixKey(address, family, agg.prefixV4, agg.prefixV6);
    const n = this.aggregateTcp.get(net);
    if (n !== undefined) this.aggregateTcp.set(net, n + 1);
    else if (this.aggregateTcp.size < this.maxTracked) this.aggregateTcp.set(net, 1);
  }

  /**
   * What the live process does once a second (dataplane.ts): the ladder's
   * judging, the same function (policy/ladder-tick.ts), escalations to the enforcer. Also expires queries
   * unanswered for backend_timeout_ms, as the in-flight sweep does.
   */
  tick(now: number): void {
    this.now = now;
    ladderTick(this.env, now, this.onOffender);
    this.reflection.tick(now);
    const cutoff = now - this.settings.backendTimeoutMs;
    for (const [key, q] of this.pending) {
      if (q.at > cutoff) break;
      this.pending.delete(key);
      this.release(q.ctx);
      this.unanswered++;
      this.counters.dropped.backend_timeout++;
    }
  }

  /** The enforcer's decision, and the record of the block it made (or would have made). */
  private readonly onOffender = (o: Offender, now: number): boolean => this.offender(o, now);

  private offender(o: Offender, now: number): boolean {
    const st = this.enforcer.stats;
    const before = st.blocksByMode.userspace + st.blocksByMode.off;
    const drop = this.enforcer.onOffender(o, now);
    if (st.blocksByMode.userspace + st.blocksByMode.off > before) {
      this.tripped = true;
      if (this.blocks.length < this.maxBlocks) {
        this.blocks.push({
          at: now, prefix: o.prefix, address: o.address, level: o.level ?? 'prefix', cause: o.cause ?? 'over_budget',
          charged: o.charged, mode: this.settings.dryRun ? 'would_block' : 'blocked',
        });
      } else {
        this.blocksNotListed++;
      }
      const p = this.prefixes.get(o.prefix);
      if (p) p.rung = 3;
    }
    return drop;
  }

  private sent(p: PrefixStat, bytes: number): void {
    this.bytesAfter += bytes;
    this.repliesAfter++;
    p.bytesAfter += bytes;
    this.counters.responses.udp++;
    this.counters.responseBytes.udp += bytes;
  }

  result(): RunResult {
    // what is still pending at the end was neither answered nor timed out within the capture
    return {
      settings: this.settings,
      dryRun: this.settings.dryRun,
      counters: this.counters,
      bytesAfter: this.bytesAfter,
      repliesAfter: this.repliesAfter,
      unpairedResponses: this.unpaired,
      unansweredQueries: this.unanswered + this.pending.size,
      pairingOverflow: this.overflow,
      rungUps: this.rungUps,
      rungDowns: this.rungDowns,
      onRung2: { prefix: this.rung2.prefix.size, aggregate: this.rung2.aggregate.size },
      rungEvents: this.rungEvents,
      blocks: this.blocks,
      blocksNotListed: this.blocksNotListed,
      refused: this.enforcer.stats.refused,
      prefixes: this.prefixes,
      aggregateTcp: this.aggregateTcp,
      tcpSenders: this.tcpSenders,
      reflectors: this.reflection.outcomes(),
      reflectorsNotSimulated: this.reflection.notSimulated,
    };
  }
}
