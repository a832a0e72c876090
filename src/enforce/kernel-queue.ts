// Packet-path step 8 — the kernel half of a block. Reads block.max_elements
// (through its owner). Feeds ampguard_kernel_queue_depth, and through its owner
// ampguard_kernel_errors_total and ampguard_enforcement_degraded.
// Blocks reach the kernel set in batches, not a process per offender. A failed
// batch is retried (100 ms, 500 ms, 2 s, then every 5 s) and after four failures
// the queue is degraded until a batch is accepted again. The queue holds one
// entry per prefix with its absolute expiry, so a replay after an outage adds
// what is left of each block (docs/enforcement.md, "Degraded mode").
import type { Logger } from 'pino';
import type { AddResult, BlockSink, KernelEntry } from './sink.js';

export const RETRY_DELAYS_MS = [100, 500, 2000, 5000] as const;
export const BATCH_DELAY_MS = 20;

interface Queued {
  readonly family: 4 | 6;
  /** a network an aggregate budget blocked: it goes into the network sets */
  readonly network: boolean;
  /** monotonic ms: a replay after an outage gets what is left, not a fresh block.timeout */
  readonly expiresAt: number;
}

/** One-shot timers, injectable so that a unit test steps them with its clock. */
interface QueueTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const nodeTimers: QueueTimers = {
  set(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface KernelQueueParts {
  /** where the batches go (its mode names it in the log) */
  readonly sink: Pick<BlockSink, 'add' | 'mode'>;
  /** at most this many entries queued: block.max_elements, the table's own bound */
  readonly maxElements: number;
  readonly clock: () => number;
  readonly log: Logger;
  /** false once a prefix was unblocked (by hand, or it expired): its queued entry is dropped */
  stillBlocked(prefix: string): boolean;
  /** runs a kernel command after the one before (the enforcer's single kernel lane) */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** records what the kernel took and what it refused */
  recordAdded(batch: readonly KernelEntry[], r: AddResult): void;
  /** counts and logs a failed kernel command */
  kernelFailure(error: string | undefined): void;
  /** the queue became degraded or recovered: `degraded` says which */
  onDegradedChange(): void;
  readonly timers?: QueueTimers;
}

/** The kernel work still to do: batching, retry with backoff, degrade and recovery. */
export class KernelQueue {
  /** one entry per prefix (a re-block updates it), bounded by maxElements */
  private queue = new Map<string, Queued>();
  private timer: unknown = null;
  /** the flush in flight: never two at once, so batches cannot race each other into the kernel */
  private flushing: Promise<void> | null = null;
  private attempt = 0;
  private closed = false;
  private degradedReason: string | null = null;
  private readonly timers: QueueTimers;

  constructor(private readonly p: KernelQueueParts) {
    this.timers = p.timers ?? nodeTimers;
  }

  /** entries waiting for the kernel (while it fails: the degraded queue): ampguard_kernel_queue_depth */
  get size(): number {
    return this.queue.size;
  }

  /** why, while the queue has failed its retries; null otherwise */
  get degraded(): string | null {
    return this.degradedReason;
  }

  has(prefix: string): boolean {
    return this.queue.has(prefix);
  }

  /** forgets a prefix's kernel work (it was unblocked) */
  delete(prefix: string): void {
    this.queue.delete(prefix);
  }

  add(prefix: string, family: 4 | 6, expiresAt: number, network: boolean): void {
    this.queue.delete(prefix); // a re-block moves to the back with its new expiry
    if (this.queue.size >= this.p.maxElements) this.prune();
    // every queued prefix is in the table, which holds maxElements at most: this only trims leftovers
    if (this.queue.size >= this.p.maxElements) return;
    this.queue.set(prefix, { family, expiresAt, network });
    if (this.timer === null && this.flushing === null && this.attempt === 0) this.schedule(BATCH_DELAY_MS);
  }

  /** No batch is scheduled from now on (what is queued is flushed once by close()). */
  stopScheduling(): void {
    this.closed = true;
  }

  /** Stops the timer, waits for the flush in flight, then sends what is left once. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    if (this.flushing) await this.flushing;
    await this.p.serial(() => this.flushOnce());
  }

  /** drops queued entries that expired or were unblocked meanwhile */
  private prune(): void {
    const now = this.p.clock();
    for (const [prefix, q] of this.queue) {
      if (q.expiresAt <= now || !this.p.stillBlocked(prefix)) this.queue.delete(prefix);
    }
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer !== null) return;
    this.timer = this.timers.set(() => {
      this.timer = null;
      if (this.flushing) return; // the flush in flight reschedules when it ends
      this.flushing = this.p.serial(() => this.flushOnce()).finally(() => {
        this.flushing = null;
        if (this.queue.size > 0 && this.attempt === 0) this.schedule(BATCH_DELAY_MS);
      });
    }, delayMs);
  }

  /** One batch to the kernel with what each entry has left; the queue keeps what must be retried. */
  private async flushOnce(): Promise<void> {
    if (this.queue.size === 0) return;
    const now = this.p.clock();
    const taken = this.queue;
    this.queue = new Map();
    const batch = this.batchOf(taken, now);
    if (batch.length === 0) {
      this.attempt = 0; // nothing left to retry: the next block starts a fresh batch
      return;
    }
    let r: AddResult;
    try {
      r = await this.p.sink.add(batch);
    } catch (err) {
      r = { ok: false, error: (err as Error).message, rejected: [], pending: batch };
    }
    this.p.recordAdded(batch, r);
    if (r.ok) this.recovered();
    else this.failed(taken, r);
  }

  private batchOf(taken: ReadonlyMap<string, Queued>, now: number): KernelEntry[] {
    const batch: KernelEntry[] = [];
    for (const [prefix, q] of taken) {
      const leftMs = q.expiresAt - now;
      // expired while waiting (an outage longer than the timeout), or unblocked by hand: nothing to replay
      if (leftMs <= 0 || !this.p.stillBlocked(prefix)) continue;
      const entry = { prefix, family: q.family, timeoutSec: Math.ceil(leftMs / 1000) };
      batch.push(q.network ? { ...entry, network: true } : entry);
    }
    return batch;
  }

  private recovered(): void {
    if (this.degradedReason !== null) this.p.log.warn({ mode: this.p.sink.mode }, 'kernel enforcement restored');
    this.degradedReason = null;
    this.p.onDegradedChange();
    this.attempt = 0;
  }

  private failed(taken: ReadonlyMap<string, Queued>, r: AddResult): void {
    this.p.kernelFailure(r.error);
    // what was not tried goes back in front, keeping its expiry; a newer block of the same prefix wins
    const retry = new Map<string, Queued>();
    for (const e of r.pending) {
      const q = taken.get(e.prefix);
      if (q && !this.queue.has(e.prefix)) retry.set(e.prefix, q);
    }
    for (const [prefix, q] of this.queue) retry.set(prefix, q);
    this.queue = retry;
    if (this.queue.size > this.p.maxElements) this.prune();
    const delay = RETRY_DELAYS_MS[Math.min(this.attempt, RETRY_DELAYS_MS.length - 1)] as number;
    this.attempt++;
    if (this.attempt === RETRY_DELAYS_MS.length && this.degradedReason === null) {
      this.degradedReason = r.error ?? 'kernel command failed';
      this.p.onDegradedChange();
      this.p.log.error({ mode: this.p.sink.mode, pending: this.queue.size, reason: this.degradedReason }, 'kernel enforcement degraded: blocking in userspace until the kernel set accepts again');
    }
    this.schedule(delay);
  }
}
