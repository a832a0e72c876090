// The arithmetic of iptables hashlimit: a bucket of `capacity` tokens that
// refills at `perMs` tokens per millisecond and starts full. Time is a parameter
// (STYLE 3) so tests step a fake clock.

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

export function newBucket(capacity: number, now: number): Bucket {
  return { tokens: capacity, updatedAt: now };
}

/**
 * Takes `cost` tokens. Returns true when the bucket had them; false means the
 * owner is over budget (and nothing is taken, as hashlimit does not match then).
 */
export function charge(bucket: Bucket, cost: number, capacity: number, perMs: number, now: number): boolean {
  const elapsed = now - bucket.updatedAt;
  if (elapsed > 0) {
    const refilled = bucket.tokens + elapsed * perMs;
    bucket.tokens = refilled < capacity ? refilled : capacity;
    bucket.updatedAt = now;
  }
  if (bucket.tokens >= cost) {
    bucket.tokens -= cost;
    return true;
  }
  return false;
}
