// SPEC step 6 — per-prefix large-response budgets. Reads
// policy.large_response.* and policy.truncate_above (through PolicySettings).
// Feeds ampguard_large_responses_total and ampguard_tracked_prefixes.
// One token bucket per prefix in an LRU capped at max_tracked, so a million
// spoofed sources cost a bounded table, not unbounded memory (STYLE 12).
import { LRUCache } from 'lru-cache';
import { charge, debit, newBucket, type Bucket } from './token-bucket.js';
import type { PolicySettings } from '../config/compile.js';

/** Told of every successful charge, with its cost in the rate's unit (cluster workers share them). */
export type ChargeListener = (prefix: string, cost: number) => void;

export class BudgetTable {
  private readonly buckets: LRUCache<string, Bucket>;
  onCharge: ChargeListener | null = null;

  constructor(readonly maxTracked: number) {
    this.buckets = new LRUCache<string, Bucket>({ max: maxTracked });
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Charges one reply of `bytes` to `prefix`; false when the prefix is over budget. */
  charge(prefix: string, bytes: number, settings: PolicySettings, now: number): boolean {
    const cost = settings.rate.unit === 'bytes' ? bytes : 1;
    const ok = charge(this.bucket(prefix, settings, now), cost, settings.bucketCapacity, settings.rate.perMs, now);
    if (ok && this.onCharge !== null) this.onCharge(prefix, cost);
    return ok;
  }

  /** Takes what another worker already charged to `prefix` (cost in the rate's unit). */
  debit(prefix: string, cost: number, settings: PolicySettings, now: number): void {
    debit(this.bucket(prefix, settings, now), cost, settings.bucketCapacity, settings.rate.perMs, now);
  }

  private bucket(prefix: string, settings: PolicySettings, now: number): Bucket {
    let bucket = this.buckets.get(prefix);
    if (!bucket) {
      bucket = newBucket(settings.bucketCapacity, now);
      this.buckets.set(prefix, bucket);
    }
    return bucket;
  }

  /** Tokens spent from a prefix's bucket (for the log line of a new block). */
  spent(prefix: string, settings: PolicySettings): number {
    const bucket = this.buckets.peek(prefix);
    return bucket ? Math.round(settings.bucketCapacity - bucket.tokens) : 0;
  }

  forget(prefix: string): void {
    this.buckets.delete(prefix);
  }
}
