// The victim's side of a reflection attack: a capture taken where the answers
// land, whose queries were never seen because they were sent elsewhere with
// the victim's address as their source. Answers without a query in the
// capture are tallied by the resolver that sent them (the reflector) and by
// the address they went to (the target); and, for each configuration
// replayed, each reflector's answers are run through ampguard's policy as if
// that reflector ran ampguard with it: what it would have sent the target
// (docs/replay.md, "The victim's side").
import { pino } from 'pino';
import { BudgetTable } from '../policy/budgets.js';
import { Counters } from '../metrics/counters.js';
import { Enforcer } from '../enforce/enforcer.js';
import { processOnlySink } from '../enforce/sink.js';
import { AS_IS, TO_BACKEND, judgeQuery, judgeUdpReply } from '../pipeline/stages.js';
import { escalatedOffender } from '../policy/large-response.js';
import { parseQuery } from '../dns/query.js';
import { nameEnd } from '../dns/name.js';
import { HEADER_LEN } from '../dns/header.js';
import type { PolicySettings } from '../config/compile.js';
import type { PolicyEnv } from '../policy/env.js';
import type { QueryContext } from '../policy/context.js';
import type { Offender } from '../policy/verdict.js';

/** answers from one reflector, or to one target */
interface FlowStat {
  answers: number;
  bytes: number;
  /** capture time of the first and last answer, ms */
  first: number;
  last: number;
  /** distinct targets (of a reflector) or reflectors (of a target), counted up to MAX_PEERS */
  readonly peers: Set<string>;
}

/** reflectors and targets followed; more are counted in `others` */
const MAX_REFLECTORS = 65_536;
const MAX_PEERS = 1024;

/**
 * Marks the queries seen in the capture, so that an answer can tell whether
 * its query was captured: a table of the latest query time by a hash of
 * client address, port and DNS ID (runner.ts pairKey). Two queries may share
 * a slot: an answer then counts as asked, never the other way round. One
 * typed array of 1 MiB (ms since the capture's start, 0 for none), so the
 * write per query and the read per answer stay in cache.
 */
export class QuerySeen {
  private readonly at = new Uint32Array(1 << 18);
  private origin = -1;

  query(key: number, now: number): void {
    if (this.origin < 0) this.origin = now - 1;
    this.at[key & 0x3ffff] = (now - this.origin) >>> 0 || 1;
  }

  /** whether a query with this key was captured within `windowMs` before `now` */
  asked(key: number, now: number, windowMs: number): boolean {
    const t = this.at[key & 0x3ffff]!;
    return t !== 0 && ((now - this.origin - t) >>> 0) <= windowMs;
  }
}

function newStat(now: number): FlowStat {
  return { answers: 0, bytes: 0, first: now, last: now, peers: new Set() };
}

/** Answers without their query, by reflector and by target (capture-wide, the same for every configuration). */
export class ReflectionTable {
  readonly reflectors = new Map<string, FlowStat>();
  readonly targets = new Map<string, FlowStat>();
  answers = 0;
  bytes = 0;
  /** answers from reflectors (or to targets) past MAX_REFLECTORS */
  othersReflectors = 0;
  othersTargets = 0;

  add(reflector: string, target: string, bytes: number, now: number): void {
    this.answers++;
    this.bytes += bytes;
    if (!this.count(this.reflectors, reflector, target, bytes, now)) this.othersReflectors++;
    if (!this.count(this.targets, target, reflector, bytes, now)) this.othersTargets++;
  }

  private count(table: Map<string, FlowStat>, key: string, peer: string, bytes: number, now: number): boolean {
    let s = table.get(key);
    if (s === undefined) {
      if (table.size >= MAX_REFLECTORS) return false;
      s = newStat(now);
      table.set(key, s);
    }
    s.answers++;
    s.bytes += bytes;
    if (now > s.last) s.last = now;
    if (s.peers.size < MAX_PEERS) s.peers.add(peer);
    return true;
  }
}

/** What the policy would have let one reflector send. */
export interface ReflectorOutcome {
  /** answers and bytes it would have sent as they were */
  allowedAnswers: number;
  allowedBytes: number;
  /** answers it would have replaced by TC stand-ins (their bytes are in allowedBytes) */
  truncated: number;
  /** answers it would not have sent: the target blocked, or the tripping reply */
  dropped: number;
  /** when it would first have blocked the target (capture ms), or null */
  blockedAt: number | null;
}

interface Simulated {
  readonly env: PolicyEnv<Counters>;
  readonly budgets: BudgetTable;
  readonly enforcer: Enforcer;
  readonly outcome: ReflectorOutcome;
}

const SILENT = pino({ level: 'silent' });
/** reflectors whose policy is simulated per configuration; each holds its own budget and block tables */
const MAX_SIMULATED = 4096;
/** targets one simulated reflector tracks (its budget table's bound) */
const SIM_TRACKED = 4096;
/** an OPT record asking for 4096 bytes: an attacker asks for large answers, so only the policy limits them */
const OPT_4096 = Buffer.from([0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);

/**
 * The query an answer answered, rebuilt from its question: what the reflector
 * received (a spoofed query with the target's address). Null when the
 * answer's question does not walk.
 */
function queryOfAnswer(answer: Buffer, at: number, length: number): Buffer | null {
  if (length < HEADER_LEN + 5 || answer[at + 4] !== 0 || answer[at + 5] !== 1) return null;
  const msg = answer.subarray(at, at + length);
  const stop = nameEnd(msg, HEADER_LEN);
  if (stop < 0 || stop + 4 > length) return null;
  const q = Buffer.alloc(stop + 4 + OPT_4096.length);
  q[0] = msg[0]!;
  q[1] = msg[1]!;
  q[2] = 0x01; // RD
  q[5] = 1; // QDCOUNT
  q[11] = 1; // ARCOUNT: the OPT
  msg.copy(q, HEADER_LEN, HEADER_LEN, stop + 4);
  OPT_4096.copy(q, stop + 4);
  return q;
}

/** One configuration's policy, run once per reflector of the capture. */
export class ReflectorPolicy {
  private readonly sims = new Map<string, Simulated>();
  private now = 0;
  private readonly clock = (): number => this.now;
  /** reflectors past MAX_SIMULATED, or answers whose question does not walk: not simulated */
  notSimulated = 0;

  constructor(
    private readonly settings: PolicySettings,
    private readonly maxBlocks: number,
    private readonly maxTracked: number,
  ) {}

  outcomes(): ReadonlyMap<string, ReflectorOutcome> {
    const out = new Map<string, ReflectorOutcome>();
    for (const [k, s] of this.sims) out.set(k, s.outcome);
    return out;
  }

  /** An answer from `reflector` to `target` without its query in the capture. */
  answer(reflector: string, target: string, family: 4 | 6, frame: Buffer, at: number, length: number, wireLength: number, now: number): void {
    this.now = now;
    const query = queryOfAnswer(frame, at, length);
    const parsed = query === null ? null : parseQuery(query);
    const sim = parsed === null ? undefined : this.sim(reflector);
    if (sim === undefined || parsed === null || query === null) {
      this.notSimulated++;
      return;
    }
    const ctx: QueryContext = { query, parsed, clientAddress: target, family, proto: 'udp' };
    const o = sim.outcome;
    const q = judgeQuery(ctx, sim.env, now);
    if (q === null) {
      o.dropped++;
      return;
    }
    if (q !== TO_BACKEND) {
      // answered by the reflector's ampguard itself (any-to-tcp): its TC stand-in went to the target instead
      o.truncated++;
      o.allowedBytes += q.length;
      return;
    }
    const r = judgeUdpReply(ctx, wireLength, sim.env, now, (off: Offender, t: number) => this.offender(sim, off, t));
    if (r === null) {
      o.dropped++;
    } else if (r === AS_IS) {
      o.allowedAnswers++;
      o.allowedBytes += wireLength;
    } else {
      o.truncated++;
      o.allowedBytes += r.length;
    }
  }

  /** The once-a-second judging of every simulated reflector that has keys on rung 2. */
  tick(now: number): void {
    this.now = now;
    for (const s of this.sims.values()) {
      if (s.budgets.truncatingCount('prefix') === 0 && s.budgets.truncatingCount('aggregate') === 0) continue;
      for (const e of s.budgets.judgeTruncating(this.settings, now)) this.offender(s, escalatedOffender(e, s.env), now);
    }
  }

  /** true when no tick would change anything */
  idle(): boolean {
    for (const s of this.sims.values()) {
      if (s.budgets.truncatingCount('prefix') > 0 || s.budgets.truncatingCount('aggregate') > 0) return false;
    }
    return true;
  }

  private offender(s: Simulated, o: Offender, now: number): boolean {
    const st = s.enforcer.stats;
    const before = st.blocksByMode.userspace + st.blocksByMode.off;
    const drop = s.enforcer.onOffender(o, now);
    if (st.blocksByMode.userspace + st.blocksByMode.off > before && s.outcome.blockedAt === null) s.outcome.blockedAt = now;
    return drop;
  }

  private sim(reflector: string): Simulated | undefined {
    let s = this.sims.get(reflector);
    if (s === undefined) {
      if (this.sims.size >= MAX_SIMULATED) return undefined;
      const settings = this.settings;
      const budgets = new BudgetTable(Math.min(SIM_TRACKED, this.maxTracked));
      const enforcer = new Enforcer(processOnlySink(settings.dryRun ? 'off' : 'userspace'), Math.min(SIM_TRACKED, this.maxBlocks), () => settings, SILENT, this.clock, this.clock);
      const env: PolicyEnv<Counters> = { settings, budgets, blocks: enforcer.blocks, counters: new Counters() };
      s = { env, budgets, enforcer, outcome: { allowedAnswers: 0, allowedBytes: 0, truncated: 0, dropped: 0, blockedAt: null } };
      this.sims.set(reflector, s);
    }
    return s;
  }
}
