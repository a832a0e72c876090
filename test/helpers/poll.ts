// Polling instead of sleeping: a test waits for the condition it needs, up to a
// deadline, and then asserts on the last value it read (so a failure names it).
// With `workers` > 1 the primary serves the workers' counters as they push them
// (about once a second, src/metrics/snapshot.ts), so a counter read right after
// a reply may not show it yet: read it through poll().

/**
 * Reads `read` every `intervalMs` (100 by default; 0: on the next turn of the
 * event loop, for a fake socket that answers at once) until `done(value)` holds
 * or `timeoutMs` has passed; returns the last value read.
 */
export async function poll<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 5000, intervalMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= end) return value;
    await new Promise((r) => (intervalMs > 0 ? setTimeout(r, intervalMs) : setImmediate(r)));
  }
}

/** Whether `check` came true within `timeoutMs`, checked every `intervalMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  return poll(check, (ok) => ok, timeoutMs, intervalMs);
}

/**
 * A counter once it has stopped moving: read until the same value has been read
 * for `quietMs` (with workers, the primary serves what each pushed up to a
 * second ago, so a value read right after traffic may still grow).
 */
export async function settled(read: () => number | Promise<number>, quietMs = 1500, timeoutMs = 10_000): Promise<number> {
  let last = NaN;
  let since = Date.now();
  return poll(read, (v) => {
    const now = Date.now();
    if (v !== last) {
      last = v;
      since = now;
      return false;
    }
    return now - since >= quietMs;
  }, timeoutMs);
}
