// Packet-path step 2 — the userspace block table: prefixes whose UDP is dropped in the
// process until they expire. Time injected.
// Feeds ampguard_blocked_clients and ampguard_dropped_total{reason="blocked"}.
// Bounded by block.max_elements the way the kernel set is: when it is full a
// new block is refused (the caller counts it), never an older one evicted, so
// with the same bound the table and the kernel set keep the same members
// (docs/enforcement.md). A min-heap of expiries reaps expired entries, so
// count() is O(1) amortised instead of a walk of the table per scrape.

import { monotonicNow, type Clock } from '../time/clock.js';

/** Which kernel set an entry belongs in (kept by enforce/ once the kernel took it; workers never set it). */
interface KernelPlace {
  readonly family: 4 | 6;
  /** a network an aggregate budget blocked: the network sets */
  readonly network: boolean;
}

export interface BlockEntry {
  readonly prefix: string;
  readonly expiresAt: number;
  /** whether the kernel set holds it too, as last confirmed (kept by enforce/; workers leave it false) */
  readonly inKernel: boolean;
  /** the kernel set it belongs in: set once the kernel took it, so drift can be repaired (docs/enforcement.md) */
  readonly place: KernelPlace | null;
}

interface Slot {
  expiresAt: number;
  inKernel: boolean;
  place: KernelPlace | null;
}

export class BlockTable {
  private readonly entries = new Map<string, Slot>();
  /** (expiresAt, prefix) pairs; stale ones (re-added or removed prefixes) are skipped when popped */
  private heap: { at: number; prefix: string }[] = [];
  /** live or not yet reaped entries with inKernel set: what the kernel sets should count */
  private kernelSlots = 0;

  constructor(
    readonly maxElements: number,
    private readonly clock: Clock = monotonicNow,
  ) {}

  /** true while `prefix` is blocked at `now`; an expired entry is removed on sight */
  isBlocked(prefix: string, now: number): boolean {
    if (this.entries.size === 0) return false;
    const slot = this.entries.get(prefix);
    if (slot === undefined) return false;
    if (now < slot.expiresAt) return true;
    this.drop(prefix, slot);
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
      this.entries.set(prefix, { expiresAt, inKernel: false, place: null });
    }
    this.push(expiresAt, prefix);
    return true;
  }

  /** Records whether the kernel set holds `prefix`; no-op for a prefix not in the table. */
  markKernel(prefix: string, inKernel: boolean): void {
    const slot = this.entries.get(prefix);
    if (!slot || slot.inKernel === inKernel) return;
    slot.inKernel = inKernel;
    this.kernelSlots += inKernel ? 1 : -1;
  }

  /** Records the kernel set an entry belongs in (null: userspace only, e.g. the kernel refused it). */
  place(prefix: string, place: KernelPlace | null): void {
    const slot = this.entries.get(prefix);
    if (slot) slot.place = place;
  }

  /** entries marked as held by the kernel, expired ones reaped first: O(1) amortised */
  kernelCount(now: number): number {
    this.reap(now);
    return this.kernelSlots;
  }

  expiresAt(prefix: string): number | undefined {
    return this.entries.get(prefix)?.expiresAt;
  }

  remove(prefix: string): boolean {
    const slot = this.entries.get(prefix);
    if (slot === undefined) return false;
    this.drop(prefix, slot);
    return true;
  }

  private drop(prefix: string, slot: Slot): void {
    if (slot.inKernel) this.kernelSlots--;
    this.entries.delete(prefix);
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
      out.push({ prefix, expiresAt: slot.expiresAt, inKernel: slot.inKernel, place: slot.place });
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
      if (slot !== undefined && slot.expiresAt <= now) this.drop(top.prefix, slot);
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
