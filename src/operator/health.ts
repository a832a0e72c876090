// What /healthz answers (docs/operations.md, "Health"): healthy while a backend
// is up and every worker is serving, judged from the data path itself, not only
// from the prober. Each worker reports once a second (its metrics snapshot is
// its heartbeat) how many UDP queries it forwarded and how many datagrams its
// upstream sockets read. Pure: the clock comes in as `now`.

interface DataPathSample {
  /** UDP queries sent to backends, since the worker started */
  readonly forwarded: number;
  /** datagrams read from backend sockets, since the worker started */
  readonly upstreamReplies: number;
  /** the worker's prober sees at least one backend up */
  readonly backendUp: boolean;
}

interface HealthLimits {
  /** a worker not heard from this long is silent (hung, stopped, or its loop blocked) */
  readonly silentMs: number;
  /** the window over which a dead upstream path is judged */
  readonly windowMs: number;
  /** at least this many queries forwarded in the window with no reply read makes the path dead */
  readonly minForwarded: number;
}

const DEFAULT_HEALTH: HealthLimits = { silentMs: 2500, windowMs: 3000, minForwarded: 20 };

export interface HealthVerdict {
  readonly ok: boolean;
  /** why not, one line each (the /healthz body) */
  readonly reasons: readonly string[];
}

interface WorkerState {
  lastBeat: number;
  latest: DataPathSample;
  /** the oldest sample still inside the window, and when it was taken */
  samples: { at: number; s: DataPathSample }[];
}

export class DataPathHealth {
  private readonly workers = new Map<number, WorkerState>();

  constructor(private readonly limits: HealthLimits = DEFAULT_HEALTH) {}

  beat(worker: number, now: number, s: DataPathSample): void {
    let w = this.workers.get(worker);
    if (!w) this.workers.set(worker, (w = { lastBeat: now, latest: s, samples: [] }));
    w.lastBeat = now;
    w.latest = s;
    w.samples.push({ at: now, s });
    // keep one sample at least windowMs old, so the window is always whole
    while (w.samples.length > 2 && now - w.samples[1]!.at >= this.limits.windowMs) w.samples.shift();
  }

  forget(worker: number): void {
    this.workers.delete(worker);
  }

  /** workers not heard from for silentMs */
  silent(now: number): number[] {
    return [...this.workers].filter(([, w]) => now - w.lastBeat >= this.limits.silentMs).map(([id]) => id);
  }

  /** a worker whose prober gets answers while its own queries get none */
  private upstreamDead(w: WorkerState, now: number): string | null {
    const first = w.samples[0];
    if (!first || now - first.at < this.limits.windowMs || !w.latest.backendUp) return null;
    const forwarded = w.latest.forwarded - first.s.forwarded;
    const replies = w.latest.upstreamReplies - first.s.upstreamReplies;
    if (forwarded < this.limits.minForwarded || replies > 0) return null;
    return `${forwarded} queries forwarded in ${Math.round((now - first.at) / 1000)} s and no reply read, while the health check gets answers`;
  }

  verdict(now: number, expectedWorkers: number): HealthVerdict {
    const reasons: string[] = [];
    if (this.workers.size < expectedWorkers) reasons.push(`${expectedWorkers - this.workers.size} of ${expectedWorkers} workers not running`);
    let anyUp = false;
    let heard = 0;
    for (const [id, w] of this.workers) {
      if (now - w.lastBeat >= this.limits.silentMs) {
        reasons.push(`worker ${id} silent for ${((now - w.lastBeat) / 1000).toFixed(1)} s`);
        continue;
      }
      heard++;
      anyUp ||= w.latest.backendUp;
      const dead = this.upstreamDead(w, now);
      if (dead) reasons.push(`worker ${id}: upstream UDP path dead: ${dead}`);
    }
    if (heard > 0 && !anyUp) reasons.unshift('no backend up');
    return { ok: reasons.length === 0, reasons };
  }
}

/** The sample of a worker's counters (metrics/counters.ts fields, or the same fields of its snapshot). */
export function dataPathSample(counters: { readonly forwarded?: unknown; readonly upstreamReplies?: unknown }, backendUp: boolean): DataPathSample {
  const n = (v: unknown): number => (typeof v === 'number' ? v : 0);
  return { forwarded: n(counters.forwarded), upstreamReplies: n(counters.upstreamReplies), backendUp };
}
