// Packet-path step 6 — large-response budgets, at two levels: the client's prefix
// (policy.large_response.prefix_v4/v6) and, optionally, the networks around it
// (policy.large_response.aggregate: the /24 or /48, and the wider /16 or /32 of
// aggregate.wide, kept in one table, each key at its own length), so a flood
// spread over a victim's /24, or over a provider's /32, is caught even when each
// /32 (or /48) stays under its own budget.
// Reads policy.large_response.*, policy.ladder.* (through PolicySettings).
// Feeds ampguard_tracked_prefixes and ampguard_ladder_prefixes.
// One token bucket per key in an LRU capped at max_tracked, so a million
// spoofed sources cost a bounded table, not unbounded memory. Each entry also
// carries its rung on the ladder (policy/ladder.ts, docs/defence.md). A table
// under pressure cannot be used to reset a budget: a fresh key whose arrival
// evicts a key used within one refill time starts with an empty bucket, and a
// key held on rung 2 (more than one TC answer) or in debt is put back once rather than forgotten.
import { LRUCache } from 'lru-cache';
import { debit, refill, type Bucket } from './token-bucket.js';
import {
  comeDown, held, judge, matchFollowUp, matchFollowUpDryRun, onOverBudget, quietSpellOver, rememberTc, RUNG_TRUNCATING, type LadderState, type OverBudgetStep,
} from './ladder.js';
import type { BudgetRule, PolicySettings } from '../config/compile.js';

/** A key's bucket, its ladder state, and the large-reply bytes it was sent by minute (top talkers). */
interface Entry extends Bucket, LadderState {
  minute: number;
  thisMinute: number;
  lastMinute: number;
}

export interface TopTalker {
  readonly prefix: string;
  /** large-reply bytes sent in the last 60 s (sliding-window estimate) */
  readonly bytes: number;
  /** its rung on the ladder: 1 under budget, 2 answered with TC (3, blocked, is added by the enforcer's view) */
  readonly rung?: number;
}

export type BudgetLevel = 'prefix' | 'aggregate';

/** A key judged on the ladder outside the packet path (judgeTruncating): to be blocked. */
export interface Escalation {
  readonly key: string;
  readonly level: BudgetLevel;
  /** tokens spent from its bucket */
  readonly charged: number;
}

/** What one worker tells the others about the shared budgets (docs/defence.md, "With workers"). */
export interface BudgetDeltas {
  readonly d: readonly (readonly [string, number])[];
  readonly a?: readonly (readonly [string, number])[];
  readonly f?: readonly (readonly [string, number, 0 | 1])[];
}

const MINUTE_MS = 60_000;
/**
 * keys held on rung 2 (or in debt) put back for one fresh key at most: a chain
 * of them at the table's tail is walked this far, so a table full of held keys
 * costs a fresh key a bounded amount of work
 */
const MAX_PUT_BACKS = 16;

/** Told of every successful charge, with its cost in the rate's unit (cluster workers share them). */
type ChargeListener = (key: string, cost: number, level: BudgetLevel) => void;

/** Told when a key climbs to rung 2 or falls back to rung 1 (a log line; never per packet). */
type RungListener = (key: string, rung: 1 | 2, level: BudgetLevel) => void;

/** One level's table: buckets by key, and the keys on rung 2 (for the gauge and the once-a-second judging). */
class LevelTable {
  readonly entries: LRUCache<string, Entry>;
  /** keys on rung 2; kept in step with evictions, so bounded by the table */
  readonly truncating = new Set<string>();
  /** fresh keys that started with an empty bucket because the table was under pressure */
  pressured = 0;
  /** the entry the last insertion evicted (set by dispose, read right after set) */
  private evictedKey: string | null = null;
  private evictedEntry: Entry | null = null;

  onRung: RungListener | null = null;

  constructor(
    max: number,
    private readonly level: BudgetLevel,
  ) {
    this.entries = new LRUCache<string, Entry>({
      max,
      dispose: (entry, key, reason) => {
        if (entry.rung === RUNG_TRUNCATING) this.truncating.delete(key);
        if (reason === 'evict' && this.evictedEntry === null) {
          this.evictedKey = key;
          this.evictedEntry = entry;
        }
      },
    });
  }

  entry(key: string, rule: BudgetRule, now: number): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      // a plain literal: spreading newBucket() here cost 7x as much per new prefix (measured: 4.8 us against 0.7 us)
      entry = {
        tokens: rule.capacity, updatedAt: now, minute: 0, thisMinute: 0, lastMinute: 0,
        rung: 1, windowStart: 0, tcSent: 0, tcLate: 0, followUps: 0, followUpsLate: 0, lastTcAt: 0, tcQ0: 0, tcQ0At: 0, tcRing: null, tcNext: 0,
      };
      this.entries.set(key, entry);
      const evicted = this.evictedEntry;
      if (evicted !== null) this.afterEviction(entry, evicted, rule, now);
    }
    return entry;
  }

  /**
   * A fresh key pushed another out. When that key was used within one refill
   * time the table is churning faster than budgets refill (a spray of fresh
   * sources): the fresh key gets no burst of its own. A key held on rung 2 (more than one TC answer) or in
   * debt is put back (the next least recently used goes instead, and is put
   * back too when it is held, up to MAX_PUT_BACKS keys per fresh one), so the
   * evidence against victims side by side at the table's tail outlives a spray.
   */
  private afterEviction(fresh: Entry, evicted: Entry, rule: BudgetRule, now: number): void {
    let out = this.takeEvicted();
    if (now - evicted.updatedAt < rule.capacity / rule.perMs) {
      fresh.tokens = 0;
      this.pressured++;
    }
    for (let n = 0; out !== null && n < MAX_PUT_BACKS && (held(out.entry) || out.entry.tokens < 0); n++) {
      // putting it back evicts the next least recently used, which dispose records
      this.entries.set(out.key, out.entry);
      if (out.entry.rung === RUNG_TRUNCATING) this.truncating.add(out.key);
      out = this.takeEvicted();
    }
  }

  /** what dispose recorded of the last eviction, cleared for the next */
  private takeEvicted(): { key: string; entry: Entry } | null {
    const key = this.evictedKey;
    const entry = this.evictedEntry;
    this.evictedKey = null;
    this.evictedEntry = null;
    return key === null || entry === null ? null : { key, entry };
  }

  /** Refills; a rung-2 key quiet for policy.ladder.quiet_ms comes down to rung 1. */
  refill(key: string, entry: Entry, rule: BudgetRule, settings: PolicySettings, now: number): void {
    refill(entry, rule.capacity, rule.perMs, now);
    if (quietSpellOver(entry, settings.ladder, now)) {
      comeDown(entry);
      this.truncating.delete(key);
      this.onRung?.(key, 1, this.level);
    }
  }
}

export class BudgetTable {
  private readonly levels: Record<BudgetLevel, LevelTable>;
  onCharge: ChargeListener | null = null;
  /**
   * told of TCP follow-up candidates this process could not match (a question
   * hash for a key with a budget here): the worker whose UDP answers truncated
   * the question may hold it (cluster workers share them like charges)
   */
  onFollowUp: ChargeListener | null = null;

  constructor(readonly maxTracked: number) {
    this.levels = { prefix: new LevelTable(maxTracked, 'prefix'), aggregate: new LevelTable(maxTracked, 'aggregate') };
  }

  /** told of rung changes at both levels */
  set onRung(listener: RungListener | null) {
    this.levels.prefix.onRung = listener;
    this.levels.aggregate.onRung = listener;
  }

  /** prefixes tracked (the per-prefix level; the aggregate level has the same bound) */
  get size(): number {
    return this.levels.prefix.entries.size;
  }

  /** keys on rung 2 (over budget, answered with TC) at a level */
  truncatingCount(level: BudgetLevel): number {
    return this.levels[level].truncating.size;
  }

  /** fresh keys that got an empty bucket because the table was churning (both levels) */
  get pressured(): number {
    return this.levels.prefix.pressured + this.levels.aggregate.pressured;
  }

  /** Charges one reply of `bytes` to `key` at `level` under `rule`; false when over budget (nothing taken). */
  chargeAt(level: BudgetLevel, key: string, bytes: number, rule: BudgetRule, now: number, settings: PolicySettings): boolean {
    const table = this.levels[level];
    const cost = rule.bytes ? bytes : 1;
    const entry = table.entry(key, rule, now);
    table.refill(key, entry, rule, settings, now);
    // on rung 2 until a quiet spell: what trickles back in is not spent on full replies,
    // so a victim's TC answers are all it gets, never more bytes than were sent
    if (entry.rung === RUNG_TRUNCATING || entry.tokens < cost) return false;
    entry.tokens -= cost;
    const minute = Math.floor(now / MINUTE_MS);
    if (minute !== entry.minute) {
      entry.lastMinute = minute === entry.minute + 1 ? entry.thisMinute : 0;
      entry.thisMinute = 0;
      entry.minute = minute;
    }
    entry.thisMinute += bytes;
    if (this.onCharge !== null) this.onCharge(key, cost, level);
    return true;
  }

  /** Gives back a charge that did not lead to a reply (another level refused it). */
  refund(level: BudgetLevel, key: string, bytes: number, rule: BudgetRule): void {
    const entry = this.levels[level].entries.peek(key);
    if (entry === undefined) return;
    const t = entry.tokens + (rule.bytes ? bytes : 1);
    entry.tokens = t < rule.capacity ? t : rule.capacity;
    entry.thisMinute -= bytes;
  }

  /**
   * A large reply `key` could not afford: the ladder's next step (policy/ladder.ts).
   * `question` is the hash of the question that is answered with TC (questionHash),
   * remembered so that its TCP retry counts as a follow-up. A network (the
   * aggregate level) is never escalated: it stays on rung 2 (docs/defence.md).
   */
  overBudget(level: BudgetLevel, key: string, rule: BudgetRule, settings: PolicySettings, now: number, question: number): OverBudgetStep {
    const table = this.levels[level];
    const entry = table.entry(key, rule, now);
    const climbs = entry.rung !== RUNG_TRUNCATING;
    const step = onOverBudget(entry, settings.ladder, now, level === 'prefix');
    if (step === 'truncate' && level === 'prefix') rememberTc(entry, question, now);
    if (climbs) {
      table.truncating.add(key);
      table.onRung?.(key, 2, level);
    }
    return step;
  }

  /**
   * A TCP query the backend answered, from `key`, with its question's hash: a
   * follow-up when that question was answered with TC to the key recently
   * (policy.ladder.window_ms). One this process cannot match goes to
   * `onFollowUp`, so that the worker (or fleet node) whose UDP answer truncated
   * it can, even one where this process never charged the key (a client's TCP
   * retry may reach another node than its UDP query); `fromPeer` marks
   * another's, not told again.
   */
  followUp(level: BudgetLevel, key: string, question: number, settings: PolicySettings, now: number, fromPeer = false): boolean {
    const entry = this.levels[level].entries.peek(key);
    if (entry !== undefined && (settings.dryRun ? matchFollowUpDryRun(entry) : matchFollowUp(entry, question, now, settings.ladder.windowMs))) return true;
    if (!fromPeer && this.onFollowUp !== null) this.onFollowUp(key, question, level);
    return false;
  }

  /**
   * Once a second, for the keys on rung 2 (bounded by the table): those quiet
   * for policy.ladder.quiet_ms go back to rung 1; the prefixes whose judging
   * window ended without enough TCP follow-ups are returned, to be blocked,
   * even when their flood has stopped (docs/defence.md).
   */
  judgeTruncating(settings: PolicySettings, now: number): Escalation[] {
    const out: Escalation[] = [];
    for (const level of ['prefix', 'aggregate'] as const) {
      const table = this.levels[level];
      if (table.truncating.size === 0) continue;
      for (const key of table.truncating) {
        const entry = table.entries.peek(key);
        if (entry === undefined) {
          table.truncating.delete(key);
          continue;
        }
        const rule = ruleFor(level, key, settings);
        table.refill(key, entry, rule, settings, now);
        if (level === 'prefix' && settings.ladder.enabled && judge(entry, settings.ladder, now)) {
          out.push({ key, level, charged: Math.round(rule.capacity - entry.tokens) });
        }
      }
    }
    return out;
  }

  /** Takes a key off rung 2 at once (a network whose budget was turned off). */
  release(level: BudgetLevel, key: string): void {
    const table = this.levels[level];
    const entry = table.entries.peek(key);
    if (entry === undefined || entry.rung !== RUNG_TRUNCATING) return;
    comeDown(entry);
    table.truncating.delete(key);
    table.onRung?.(key, 1, level);
  }

  /** Whether a key is on rung 2 at a level (off the packet path: the collateral figure). */
  isTruncating(level: BudgetLevel, key: string): boolean {
    return this.levels[level].truncating.has(key);
  }

  /** The keys on rung 2 at a level (a copy; for a reload, never per packet). */
  truncatingKeys(level: BudgetLevel): string[] {
    return [...this.levels[level].truncating];
  }

  /**
   * The `n` prefixes sent the most large-reply bytes in the last minute: a walk
   * of the table (bounded by max_tracked), done when someone asks, never per packet.
   */
  top(n: number, now: number): TopTalker[] {
    const minute = Math.floor(now / MINUTE_MS);
    const weight = 1 - (now % MINUTE_MS) / MINUTE_MS;
    const best: TopTalker[] = [];
    this.levels.prefix.entries.forEach((e, prefix) => {
      const bytes =
        e.minute === minute ? e.thisMinute + e.lastMinute * weight : e.minute === minute - 1 ? e.thisMinute * weight : 0;
      if (bytes <= 0 || (best.length >= n && bytes <= best[best.length - 1]!.bytes)) return;
      let i = best.length;
      while (i > 0 && best[i - 1]!.bytes < bytes) i--;
      best.splice(i, 0, { prefix, bytes: Math.round(bytes), rung: e.rung });
      if (best.length > n) best.pop();
    });
    return best;
  }

  /** The rung of a prefix: 1 or 2 (3, blocked, is the enforcer's to say). */
  rung(level: BudgetLevel, key: string): number {
    return this.levels[level].entries.peek(key)?.rung ?? 1;
  }

  /** Takes what another worker already charged to a key (cost in the rate's unit). */
  debit(prefix: string, cost: number, settings: PolicySettings, now: number, level: BudgetLevel = 'prefix'): void {
    const rule = ruleFor(level, prefix, settings);
    const table = this.levels[level];
    const entry = table.entry(prefix, rule, now);
    debit(entry, cost, rule.capacity, rule.perMs, now);
  }

  /** Tokens spent from a key's bucket (for the log line of a new block). */
  spent(prefix: string, settings: PolicySettings, level: BudgetLevel = 'prefix'): number {
    const rule = ruleFor(level, prefix, settings);
    const bucket = this.levels[level].entries.peek(prefix);
    return bucket ? Math.round(rule.capacity - bucket.tokens) : 0;
  }
}

/**
 * The rule a key is kept under: the per-prefix budget, or at the aggregate
 * level the network's or (a key at aggregate.wide's length) the wide network's.
 * Parses the key's length: off the packet path (judging, peers' debits, logs).
 */
function ruleFor(level: BudgetLevel, key: string, settings: PolicySettings): BudgetRule {
  if (level === 'prefix') return settings.prefixBudget;
  const agg = settings.aggregate;
  const slash = key.lastIndexOf('/');
  if (slash < 0) return agg.rule;
  const bits = Number(key.slice(slash + 1));
  const wideBits = key.includes(':') ? agg.wide.prefixV6 : agg.wide.prefixV4;
  return bits === wideBits ? agg.wide.rule : agg.rule;
}
