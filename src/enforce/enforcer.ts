// SPEC steps 7-8 — what happens to an offender. Reads block.*, the prefix
// lengths. Feeds ampguard_blocks_total, ampguard_blocked_clients and the
// enforcement health metrics.
// Every block goes into the userspace table at once (the tripping reply and any
// query before the kernel rule catches up are dropped here) and is queued for
// the kernel sink, which gets batches, not a process per offender. A failing
// kernel command is logged, counted and retried; the block itself is never lost
// because the userspace table holds it regardless.
import type { Logger } from 'pino';
import { BlockTable } from '../policy/block-table.js';
import { prefixKey } from '../policy/prefix.js';
import type { PolicySettings } from '../config/compile.js';
import type { Offender } from '../pipeline/verdict.js';
import type { BlockMode, BlockSink, KernelEntry } from './sink.js';

const RETRY_DELAYS_MS = [100, 500, 2000, 5000];
/** recent block events kept for the dashboard and /api/blocks */
const RECENT_BLOCKS = 100;
const BATCH_DELAY_MS = 20;

export interface EnforcerStats {
  readonly blocksByMode: Record<BlockMode, number>;
  kernelErrors: number;
  degraded: boolean;
}

/** What the enforcer tells other processes that keep a copy of the block table (cluster workers). */
export type BlockChange = { readonly kind: 'block'; readonly prefix: string; readonly ttlMs: number } | { readonly kind: 'unblock'; readonly prefix: string };

export interface BlockEvent {
  readonly prefix: string;
  readonly address: string;
  /** rate: over its large-response budget; manual: `ampguard blocks add`; off: would have been blocked */
  readonly reason: 'rate' | 'manual' | 'off';
  /** large-reply bytes (or replies) charged when it tripped; 0 for manual blocks */
  readonly charged: number;
  /** wall-clock ms */
  readonly at: number;
  readonly expiresAt: number;
}

export interface BlockView {
  readonly prefix: string;
  readonly expiresInSec: number;
  readonly expiresInMs: number;
  readonly where: BlockMode;
}

export class Enforcer {
  readonly blocks: BlockTable;
  /** mode off: what would have been blocked, so each prefix is logged once per timeout */
  private readonly wouldBlock: BlockTable;
  readonly stats: EnforcerStats = {
    blocksByMode: { ipset: 0, nftables: 0, userspace: 0, off: 0 },
    kernelErrors: 0,
    degraded: false,
  };
  private queue: KernelEntry[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closed = false;
  private readonly recentEvents: BlockEvent[] = [];
  onChange: ((change: BlockChange) => void) | null = null;

  constructor(
    private sink: BlockSink,
    maxElements: number,
    private readonly settings: () => PolicySettings,
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.blocks = new BlockTable(maxElements);
    this.wouldBlock = new BlockTable(maxElements);
  }

  get mode(): BlockMode {
    return this.sink.mode;
  }

  /** Loads what the kernel set already holds, so a restart forgets nobody. */
  async loadKernelMembers(): Promise<number> {
    const members = await this.sink.list();
    if (!members) return 0;
    const now = this.clock();
    const s = this.settings();
    for (const m of members) {
      const key = prefixKey(m.prefix.split('/')[0] as string, m.family, s.prefixV4, s.prefixV6);
      const ttlMs = (m.timeoutSec > 0 ? m.timeoutSec * 1000 : s.blockTimeoutMs);
      this.blocks.add(key, now + ttlMs);
    }
    return members.length;
  }

  /** SPEC step 7. Returns true when the tripping reply must be dropped. */
  onOffender(o: Offender, now: number): boolean {
    const s = this.settings();
    if (this.sink.mode === 'off') {
      if (!this.wouldBlock.isBlocked(o.prefix, now)) {
        this.wouldBlock.add(o.prefix, now + s.blockTimeoutMs);
        this.stats.blocksByMode.off++;
        this.remember(o.prefix, o.address, 'off', o.charged, s.blockTimeoutMs);
        this.log.warn({ address: o.address, prefix: o.prefix, charged: o.charged, rule: `${s.rateText} burst ${s.burst}`, mode: 'off' }, 'prefix over budget, not blocked (block.mode off)');
      }
      return false;
    }
    if (this.blocks.isBlocked(o.prefix, now)) return true;
    this.blocks.add(o.prefix, now + s.blockTimeoutMs);
    this.onChange?.({ kind: 'block', prefix: o.prefix, ttlMs: s.blockTimeoutMs });
    this.stats.blocksByMode[this.sink.mode]++;
    this.remember(o.prefix, o.address, 'rate', o.charged, s.blockTimeoutMs);
    this.log.warn(
      { address: o.address, prefix: o.prefix, charged: o.charged, rule: `${s.rateText} burst ${s.burst}`, timeout_s: s.blockTimeoutMs / 1000, mode: this.sink.mode },
      'prefix blocked',
    );
    this.enqueue({ prefix: o.prefix, family: o.family, timeoutSec: s.blockTimeoutMs / 1000 });
    return true;
  }

  /** A block by hand (CLI, API): same tables, same timeout. */
  blockByHand(address: string, family: 4 | 6): string {
    const s = this.settings();
    const prefix = prefixKey(address, family, s.prefixV4, s.prefixV6);
    const now = this.clock();
    this.blocks.add(prefix, now + s.blockTimeoutMs);
    this.onChange?.({ kind: 'block', prefix, ttlMs: s.blockTimeoutMs });
    this.enqueue({ prefix, family, timeoutSec: s.blockTimeoutMs / 1000 });
    this.remember(prefix, address, 'manual', 0, s.blockTimeoutMs);
    this.log.warn({ address, prefix, mode: this.sink.mode }, 'prefix blocked by hand');
    return prefix;
  }

  async unblock(address: string, family: 4 | 6): Promise<string> {
    const s = this.settings();
    const prefix = prefixKey(address, family, s.prefixV4, s.prefixV6);
    this.blocks.remove(prefix);
    this.onChange?.({ kind: 'unblock', prefix });
    this.queue = this.queue.filter((e) => e.prefix !== prefix);
    const r = await this.sink.remove({ prefix, family });
    if (!r.ok) this.kernelFailure(r.error);
    this.log.warn({ address, prefix }, 'prefix unblocked by hand');
    return prefix;
  }

  list(): BlockView[] {
    const now = this.clock();
    return this.blocks.list(now).map((b) => ({
      prefix: b.prefix,
      expiresInSec: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
      expiresInMs: Math.max(0, b.expiresAt - now),
      where: this.stats.degraded ? 'userspace' : this.sink.mode,
    }));
  }

  /** The latest block events, newest first (at most RECENT_BLOCKS). */
  recent(): readonly BlockEvent[] {
    return [...this.recentEvents].reverse();
  }

  private remember(prefix: string, address: string, reason: BlockEvent['reason'], charged: number, ttlMs: number): void {
    const at = this.wallClock();
    this.recentEvents.push({ prefix, address, reason, charged, at, expiresAt: at + ttlMs });
    if (this.recentEvents.length > RECENT_BLOCKS) this.recentEvents.shift();
  }

  blockedCount(): number {
    return this.blocks.count(this.clock());
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.flush();
    await this.sink.close();
  }

  private enqueue(entry: KernelEntry): void {
    if (this.sink.mode === 'userspace' || this.sink.mode === 'off') return;
    this.queue.push(entry);
    if (this.flushTimer === null && this.attempt === 0) this.schedule(BATCH_DELAY_MS);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, delayMs);
    this.flushTimer.unref();
  }

  private async flush(): Promise<void> {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const r = await this.sink.add(batch);
    if (r.ok) {
      if (this.stats.degraded) this.log.warn({ mode: this.sink.mode }, 'kernel enforcement restored');
      this.stats.degraded = false;
      this.attempt = 0;
      if (this.queue.length > 0) this.schedule(BATCH_DELAY_MS);
      return;
    }
    this.kernelFailure(r.error);
    this.queue = batch.concat(this.queue);
    const delay = RETRY_DELAYS_MS[Math.min(this.attempt, RETRY_DELAYS_MS.length - 1)] as number;
    this.attempt++;
    if (this.attempt === RETRY_DELAYS_MS.length && !this.stats.degraded) {
      this.stats.degraded = true;
      this.log.error({ mode: this.sink.mode, pending: this.queue.length }, 'kernel enforcement degraded: blocking in userspace until the kernel set accepts again');
    }
    this.schedule(delay);
  }

  private kernelFailure(error: string | undefined): void {
    this.stats.kernelErrors++;
    this.log.warn({ mode: this.sink.mode, err: error }, 'kernel command failed');
  }
}
