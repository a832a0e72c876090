// Packet-path step 6 — large-response budgets, at two levels: the client's prefix
// (policy.large_response.prefix_v4/v6) and, optionally, the aggregate network
// around it (policy.large_response.aggregate), so a flood spread over a
// victim's /24 is caught even when each /32 stays under its own budget.
// Reads policy.large_response.*, policy.ladder.* (through PolicySettings).
// Feeds ampguard_tracked_prefixes and ampguard_ladder_prefixes.
// One token bucket per key in an LRU capped at max_tracked, so a million
// spoofed sources cost a bounded table, not unbounded memory. Each entry also
// carries its rung on the ladder (policy/ladder.ts, docs/defence.md).
import { LRUCache } from 'lru-cache';
import { debit, refill, type Bucket } from './token-bucket.js';
import { judge, onFollowUp, onOverBudget, onRefilled, RUNG_TRUNCATING, type LadderState, type OverBudgetStep } from './ladder.js';
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

/** A key judged on the ladder outside the packet path (settle): to be blocked. */
export interface Escalation {
  readonly key: string;
  readonly level: BudgetLevel;
  /** tokens spent from its bucket */
  readonly charged: number;
}

const MINUTE_MS = 60_000;

/** Told of every successful charge, with its cost in the rate's unit (cluster workers share them). */
export type ChargeListener = (key: string, cost: number, level: BudgetLevel) => void;

/** Told when a key climbs to rung 2 or falls back to rung 1 (a log line; never per packet). */
export type RungListener = (key: string, rung: 1 | 2, level: BudgetLevel) => void;

/** One level's table: buckets by key, and the keys on rung 2 (for the gauge and the refill sweep). */
class LevelTable {
  readonly entries: LRUCache<string, Entry>;
  /** keys on rung 2; kept in step with evictions, so bounded by the table */
  readonly truncating = new Set<string>();

  onRung: RungListener | null = null;

  constructor(
    max: number,
    private readonly level: BudgetLevel,
  ) {
    this.entries = new LRUCache<string, Entry>({
      max,
      dispose: (entry, key) => {
        if (entry.rung === RUNG_TRUNCATING) this.truncating.delete(key);
      },
    });
  }

  entry(key: string, capacity: number, now: number): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      // a plain literal: spreading newBucket() here cost 7x as much per new prefix (measured: 4.8 us against 0.7 us)
      entry = {
        tokens: capacity, updatedAt: now, minute: 0, thisMinute: 0, lastMinute: 0,
        rung: 1, windowStart: 0, tcSent: 0, followUps: 0,
      };
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Refills; a rung-2 key whose bucket is full again falls back to rung 1. */
  refill(key: string, entry: Entry, rule: BudgetRule, now: number): void {
    refill(entry, rule.capacity, rule.perMs, now);
    if (entry.rung === RUNG_TRUNCATING && entry.tokens >= rule.capacity) {
      onRefilled(entry);
      this.truncating.delete(key);
      this.onRung?.(key, 1, this.level);
    }
  }
}

export class BudgetTable {
  private readonly levels: Record<BudgetLevel, LevelTable>;
  onCharge: ChargeListener | null = null;
  /** told of TCP follow-ups seen in this process (cluster workers share them like charges) */
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

  /** Charges one reply of `bytes` to a prefix; false when the prefix is over budget. */
  charge(prefix: string, bytes: number, settings: PolicySettings, now: number): boolean {
    return this.chargeAt('prefix', prefix, bytes, settings.prefixBudget, now);
  }

  /** Charges one reply of `bytes` to `key` at `level` under `rule`; false when over budget (nothing taken). */
  chargeAt(level: BudgetLevel, key: string, bytes: number, rule: BudgetRule, now: number): boolean {
    const table = this.levels[level];
    const cost = rule.bytes ? bytes : 1;
    const entry = table.entry(key, rule.capacity, now);
    table.refill(key, entry, rule, now);
    // on rung 2 until the bucket is full again: what trickles back in is not spent on full
    // replies, so a victim's TC answers are all it gets, never more bytes than were sent
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

  /** Gives back a charge that did not lead to a reply (the other level refused it). */
  refund(level: BudgetLevel, key: string, bytes: number, rule: BudgetRule): void {
    const entry = this.levels[level].entries.peek(key);
    if (entry === undefined) return;
    const t = entry.tokens + (rule.bytes ? bytes : 1);
    entry.tokens = t < rule.capacity ? t : rule.capacity;
    entry.thisMinute -= bytes;
  }

  /** A large reply `key` could not afford: the ladder's next step (policy/ladder.ts). */
  overBudget(level: BudgetLevel, key: string, settings: PolicySettings, now: number): OverBudgetStep {
    const table = this.levels[level];
    const rule = level === 'prefix' ? settings.prefixBudget : settings.aggregate.rule;
    const entry = table.entry(key, rule.capacity, now);
    const climbs = entry.rung !== RUNG_TRUNCATING;
    const step = onOverBudget(entry, settings.ladder, now);
    if (climbs) {
      table.truncating.add(key);
      table.onRung?.(key, 2, level);
    }
    return step;
  }

  /**
   * TCP queries from `key`, counted while it is judged. Those seen here are also
   * told to `onFollowUp`, so that the worker (or fleet node) whose UDP answers
   * put the key on rung 2 hears of them, even when this one never charged the
   * key (a client's TCP retry may reach another node than its UDP query);
   * `fromPeer` marks another's, which are not told again.
   */
  followUp(level: BudgetLevel, key: string, n: number, fromPeer = false): boolean {
    if (!fromPeer && this.onFollowUp !== null) this.onFollowUp(key, n, level);
    const entry = this.levels[level].entries.peek(key);
    if (entry === undefined) return false;
    if (entry.rung !== RUNG_TRUNCATING) return false;
    onFollowUp(entry, n);
    return true;
  }

  /**
   * Once a second, for the keys on rung 2 (bounded by the table): those whose
   * buckets have refilled go back to rung 1; those whose judging window ended
   * without enough TCP follow-ups are returned, to be blocked, even when their
   * flood has stopped (docs/defence.md).
   */
  settle(settings: PolicySettings, now: number): Escalation[] {
    const out: Escalation[] = [];
    for (const level of ['prefix', 'aggregate'] as const) {
      const table = this.levels[level];
      if (table.truncating.size === 0) continue;
      const rule = level === 'prefix' ? settings.prefixBudget : settings.aggregate.rule;
      for (const key of table.truncating) {
        const entry = table.entries.peek(key);
        if (entry === undefined) {
          table.truncating.delete(key);
          continue;
        }
        table.refill(key, entry, rule, now);
        if (settings.ladder.enabled && judge(entry, settings.ladder, now)) {
          out.push({ key, level, charged: Math.round(rule.capacity - entry.tokens) });
        }
      }
    }
    return out;
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
    const rule = level === 'prefix' ? settings.prefixBudget : settings.aggregate.rule;
    const table = this.levels[level];
    const entry = table.entry(prefix, rule.capacity, now);
    debit(entry, cost, rule.capacity, rule.perMs, now);
  }

  /** Tokens spent from a key's bucket (for the log line of a new block). */
  spent(prefix: string, settings: PolicySettings, level: BudgetLevel = 'prefix'): number {
    const rule = level === 'prefix' ? settings.prefixBudget : settings.aggregate.rule;
    const bucket = this.levels[level].entries.peek(prefix);
    return bucket ? Math.round(rule.capacity - bucket.tokens) : 0;
  }

  forget(prefix: string, level: BudgetLevel = 'prefix'): void {
    this.levels[level].entries.delete(prefix);
  }
}
