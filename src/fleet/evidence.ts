// What a node tells its site about the prefixes it serves, batched between two
// publishes (docs/fleet.md): budget charges at the prefix (`d`) and aggregate
// (`a`) levels in the rate's unit, TCP follow-ups (`f`: [key, the hash of the
// question the backend answered over TCP, 0 prefix | 1 aggregate]: the node
// that truncated that question to the key counts it, docs/defence.md), and keys this node blocked on its own evidence (`x`), which
// the others take as a spent budget: they answer them with TC at once and
// block only on their own judging. The same shape as the cluster's `charges`.
import type { BudgetDeltas } from '../policy/budgets.js';

export interface Evidence extends BudgetDeltas {
  readonly x?: readonly string[];
}

/** entries one message may carry; a bigger batch is split over several publishes */
export const MAX_ENTRIES = 20_000;
const MAX_KEY = 64;
/** follow-ups one batch carries at most (the workers send at most 4096 each per 5 ms) */
const MAX_FOLLOWUPS = 20_000;

export class EvidenceBatch {
  private d = new Map<string, number>();
  private a = new Map<string, number>();
  private f: [string, number, 0 | 1][] = [];
  private x = new Set<string>();

  get size(): number {
    return this.d.size + this.a.size + this.f.length + this.x.size;
  }

  charge(key: string, cost: number, aggregate: boolean): void {
    const m = aggregate ? this.a : this.d;
    m.set(key, (m.get(key) ?? 0) + cost);
  }

  /**
   * One TCP follow-up. Each is sent: two TCP queries for one question vouch for
   * two TC answers of it (a NAT's stubs ask the same names). Bounded: past
   * MAX_FOLLOWUPS in one batch they are dropped, which can only make the
   * judging node stricter, never let a flood through.
   */
  followUp(key: string, question: number, level: 0 | 1): void {
    if (this.f.length < MAX_FOLLOWUPS) this.f.push([key, question, level]);
  }

  /** a worker's `charges` message */
  add(deltas: BudgetDeltas): void {
    for (const [k, c] of deltas.d) this.charge(k, c, false);
    for (const [k, c] of deltas.a ?? []) this.charge(k, c, true);
    for (const [k, n, l] of deltas.f ?? []) this.followUp(k, n, l);
  }

  blocked(key: string): void {
    this.x.add(key);
  }

  /** Empties the batch into message bodies of MAX_ENTRIES entries at most. */
  take(): Evidence[] {
    const out: Evidence[] = [];
    let cur = { d: [] as [string, number][], a: [] as [string, number][], f: [] as [string, number, 0 | 1][], x: [] as string[] };
    let n = 0;
    const room = (): void => {
      if (++n <= MAX_ENTRIES) return;
      out.push(cur);
      cur = { d: [], a: [], f: [], x: [] };
      n = 1;
    };
    for (const [k, c] of this.d) (room(), cur.d.push([k, round(c)]));
    for (const [k, c] of this.a) (room(), cur.a.push([k, round(c)]));
    for (const e of this.f) (room(), cur.f.push(e));
    for (const k of this.x) (room(), cur.x.push(k));
    if (n > 0) out.push(cur);
    this.d = new Map();
    this.a = new Map();
    this.f = [];
    this.x = new Set();
    return out;
  }
}

/** costs in the rate's unit are bytes or replies: a few decimals are all a bucket needs */
function round(c: number): number {
  return Math.round(c * 1000) / 1000;
}

const isKey = (k: unknown): k is string => typeof k === 'string' && k.length > 0 && k.length <= MAX_KEY;
const isCount = (c: unknown): c is number => typeof c === 'number' && Number.isFinite(c) && c >= 0;
/** a question hash (policy/ladder.ts questionHash): any 32-bit integer but 0 */
const isHash = (h: unknown): h is number => typeof h === 'number' && Number.isInteger(h) && h !== 0 && h >= -0x80000000 && h <= 0xffffffff;

/**
 * A peer's body, checked entry by entry: a message that is not the shape above
 * is refused whole (it was sealed with the key, so it is a bug, not an attack;
 * still never thrown). Negative costs would refill a bucket: refused.
 */
export function parseEvidence(body: string): Evidence | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const pairs = (x: unknown): x is [string, number][] =>
    x === undefined || (Array.isArray(x) && x.length <= MAX_ENTRIES && x.every((e) => Array.isArray(e) && e.length === 2 && isKey(e[0]) && isCount(e[1])));
  const follow = (x: unknown): x is [string, number, 0 | 1][] =>
    x === undefined || (Array.isArray(x) && x.length <= MAX_ENTRIES && x.every((e) => Array.isArray(e) && e.length === 3 && isKey(e[0]) && isHash(e[1]) && (e[2] === 0 || e[2] === 1)));
  const keys = (x: unknown): x is string[] => x === undefined || (Array.isArray(x) && x.length <= MAX_ENTRIES && x.every(isKey));
  if (!pairs(o.d) || !pairs(o.a) || !follow(o.f) || !keys(o.x)) return null;
  return { d: o.d ?? [], a: o.a ?? [], f: o.f ?? [], x: o.x ?? [] };
}
