// Packet-path step 2 — the userspace block table: prefixes whose UDP is dropped in the
// process until they expire. Time injected.
// Feeds ampguard_blocked_clients and ampguard_dropped_total{reason="blocked"}.
// Bounded by block.max_elements the way the kernel set is: when it is full a
// new block is refused (the caller counts it), never an older one evicted, so
// with the same bound the table and the kernel set keep the same members
// (docs/enforcement.md). A min-heap of expiries reaps expired entries, so
// count() is O(1) amortised instead of a walk of the table per scrape.

export interface BlockEntry {
  readonly prefix: string;
  readonly expiresAt: number;
  /** whether the kernel set holds it too (kept by enforce/; workers leave it false) */
  readonly inKernel: boolean;
}

interface Slot {
  expiresAt: number;
  inKernel: boolean;
}

export class BlockTable {
  private readonly entries = new Map<string, Slot>();
  /** (expiresAt, prefix) pairs; stale ones (re-added or removed prefixes) are skipped when popped */
  private heap: { at: number; prefix: string }[] = [];

  constructor(
    readonly maxElements: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** true while `prefix` is blocked at `now`; an expired entry is removed on sight */
  isBlocked(prefix: string, now: number): boolean {
    if (this.entries.size === 0) return false;
    const slot = this.entries.get(prefix);
    if (slot === undefined) return false;
    if (now < slot.expiresAt) return true;
    this.entries.delete(prefix);
    return false;
  }

  get isEmpty(): boolean {
    return this.entries.size === 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Blocks `prefix` until `expiresAt` (a prefix already there gets the new
   * expiry). false when the table holds maxElements live blocks already.
   */
  add(prefix: string, expiresAt: number, now: number = this.clock()): boolean {
    const slot = this.entries.get(prefix);
    if (slot) {
      slot.expiresAt = expiresAt;
    } else {
      if (this.entries.size >= this.maxElements) {
        this.reap(now);
        if (this.entries.size >= this.maxElements) return false;
      }
      this.entries.set(prefix, { expiresAt, inKernel: false });
    }
    this.push(expiresAt, prefix);
    return true;
  }

  /** Records whether the kernel set holds `prefix`; no-op for a prefix not in the table. */
  markKernel(prefix: string, inKernel: boolean): void {
    const slot = this.entries.get(prefix);
    if (slot) slot.inKernel = inKernel;
  }

  expiresAt(prefix: string): number | undefined {
    return this.entries.get(prefix)?.expiresAt;
  }

  remove(prefix: string): boolean {
    return this.entries.delete(prefix);
  }

  /**
   * Live entries, oldest block first, from the `offset`-th on, at most `limit`:
   * it walks offset + limit entries, never the whole table for a page (an
   * operator's listing must not stall the packet path, docs/operations.md).
   */
  list(now: number, offset = 0, limit = Infinity): BlockEntry[] {
    this.reap(now);
    const out: BlockEntry[] = [];
    if (limit <= 0) return out;
    let skip = offset;
    for (const [prefix, slot] of this.entries) {
      if (now >= slot.expiresAt) continue;
      if (skip > 0) {
        skip--;
        continue;
      }
      out.push({ prefix, expiresAt: slot.expiresAt, inKernel: slot.inKernel });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** live entries: amortised O(log n) per expired entry, O(1) otherwise */
  count(now: number): number {
    this.reap(now);
    return this.entries.size;
  }

  /** Removes every entry expired at `now`, by popping the heap of expiries. */
  private reap(now: number): void {
    const h = this.heap;
    while (h.length > 0 && (h[0] as { at: number }).at <= now) {
      const top = this.pop();
      const slot = this.entries.get(top.prefix);
      if (slot !== undefined && slot.expiresAt <= now) this.entries.delete(top.prefix);
    }
  }

  private push(at: number, prefix: string): void {
    const h = this.heap;
    // re-blocks and removals leave stale pairs behind: rebuild before they outnumber the live ones
    if (h.length > 2 * this.entries.size + 64) {
      this.heap = [];
      for (const [p, slot] of this.entries) this.siftUp(this.heap, { at: slot.expiresAt, prefix: p });
      if (this.entries.get(prefix)?.expiresAt === at) return;
    }
    this.siftUp(this.heap, { at, prefix });
  }

  private siftUp(h: { at: number; prefix: string }[], item: { at: number; prefix: string }): void {
    let i = h.length;
    h.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as { at: number }).at <= item.at) break;
      h[i] = h[parent] as { at: number; prefix: string };
      i = parent;
    }
    h[i] = item;
  }

  private pop(): { at: number; prefix: string } {
    const h = this.heap;
    const top = h[0] as { at: number; prefix: string };
    const last = h.pop() as { at: number; prefix: string };
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && (h[r] as { at: number }).at < (h[l] as { at: number }).at ? r : l;
        if ((h[c] as { at: number }).at >= last.at) break;
        h[i] = h[c] as { at: number; prefix: string };
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
