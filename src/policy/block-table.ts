// SPEC step 2 — the userspace block table: prefixes whose UDP is dropped in the
// process until they expire. Bounded by block.max_elements (LRU), time injected.
// Feeds ampguard_blocked_clients and ampguard_dropped_total{reason="blocked"}.
import { LRUCache } from 'lru-cache';

export interface BlockEntry {
  readonly prefix: string;
  readonly expiresAt: number;
}

export class BlockTable {
  private readonly entries: LRUCache<string, number>;

  constructor(readonly maxElements: number) {
    this.entries = new LRUCache<string, number>({ max: maxElements });
  }

  /** true while `prefix` is blocked at `now`; an expired entry is removed on sight */
  isBlocked(prefix: string, now: number): boolean {
    if (this.entries.size === 0) return false;
    const expiresAt = this.entries.get(prefix);
    if (expiresAt === undefined) return false;
    if (now < expiresAt) return true;
    this.entries.delete(prefix);
    return false;
  }

  get isEmpty(): boolean {
    return this.entries.size === 0;
  }

  add(prefix: string, expiresAt: number): void {
    this.entries.set(prefix, expiresAt);
  }

  remove(prefix: string): boolean {
    return this.entries.delete(prefix);
  }

  /** live entries; expired ones are purged on the way */
  list(now: number): BlockEntry[] {
    const out: BlockEntry[] = [];
    for (const [prefix, expiresAt] of this.entries.entries()) {
      if (now < expiresAt) out.push({ prefix, expiresAt });
      else this.entries.delete(prefix);
    }
    return out;
  }

  count(now: number): number {
    return this.list(now).length;
  }
}
