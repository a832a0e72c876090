// When to replace a dead worker (pure, the clock passed in). A worker that
// dies at once would otherwise be replaced in a tight loop: each crash within
// WINDOW_MS doubles the wait before the next replacement, and MAX_CRASHES
// crashes within the window end the service, with a clear error, rather than
// keep a broken data plane half alive.

interface RespawnLimits {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly windowMs: number;
  readonly maxCrashes: number;
}

const DEFAULT_RESPAWN: RespawnLimits = { baseDelayMs: 500, maxDelayMs: 30_000, windowMs: 60_000, maxCrashes: 5 };

type RespawnDecision = { readonly respawnInMs: number } | { readonly giveUp: string };

export class RespawnPolicy {
  private crashes: number[] = [];

  constructor(private readonly limits: RespawnLimits = DEFAULT_RESPAWN) {}

  /** a worker died at `now` (ms): when to start its replacement, or why not to */
  onCrash(now: number): RespawnDecision {
    const { baseDelayMs, maxDelayMs, windowMs, maxCrashes } = this.limits;
    this.crashes = this.crashes.filter((t) => now - t < windowMs);
    this.crashes.push(now);
    const n = this.crashes.length;
    if (n >= maxCrashes) return { giveUp: `${n} workers died within ${Math.round(windowMs / 1000)} s` };
    return { respawnInMs: Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1)) };
  }
}
