// The arithmetic of iptables hashlimit: a bucket of `capacity` tokens that
// refills at `perMs` tokens per millisecond and starts full. Time is a parameter
// (CONTRIBUTING.md rule 3) so tests step a fake clock.

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Adds what the rate brought since the last update, up to the capacity. */
export function refill(bucket: Bucket, capacity: number, perMs: number, now: number): void {
  const elapsed = now - bucket.updatedAt;
  if (elapsed > 0) {
    const refilled = bucket.tokens + elapsed * perMs;
    bucket.tokens = refilled < capacity ? refilled : capacity;
    bucket.updatedAt = now;
  }
}

/**
 * Takes `cost` tokens that another process already spent on this owner (cluster
 * workers share their charges), whether or not the bucket has them: the debt
 * (at most one bucket's worth) refills at the rate like anything else.
 */
export function debit(bucket: Bucket, cost: number, capacity: number, perMs: number, now: number): void {
  refill(bucket, capacity, perMs, now);
  const left = bucket.tokens - cost;
  bucket.tokens = left > -capacity ? left : -capacity;
}
