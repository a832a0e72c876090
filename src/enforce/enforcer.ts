// Packet-path steps 7-8 — what happens to an offender. Reads block.*, the prefix
// lengths. Feeds ampguard_blocks_total, ampguard_blocked_clients and the
// enforcement health metrics.
// Every block goes into the userspace table at once (the tripping reply and any
// query before the kernel rule catches up are dropped here) and is queued for
// the kernel sink, which gets batches, not a process per offender. A failing
// kernel command is logged, counted and retried; the block itself is never lost
// because the userspace table holds it regardless. docs/enforcement.md: what is
// refused before it is queued, how the queue is bounded and keeps each entry's
// expiry, and why the listing says where each block really is.
import type { Logger } from 'pino';
import { BlockTable } from '../policy/block-table.js';
import { prefixKey } from '../policy/prefix.js';
import { allowlistedInside, blockTarget, holdsLoopback } from '../policy/block-target.js';
import type { PolicySettings } from '../config/compile.js';
import type { Offender } from '../policy/verdict.js';
import { prefixAddress, type AddResult, type BlockMode, type BlockSink, type KernelEntry } from './sink.js';
import { Reconciler } from './reconcile.js';
import { KernelQueue } from './kernel-queue.js';
import { RecentBlocks, type BlockEvent } from './recent-blocks.js';

export type { BlockEvent, BlockReason } from './recent-blocks.js';

interface EnforcerStats {
  readonly blocksByMode: Record<BlockMode, number>;
  kernelErrors: number;
  degraded: boolean;
  /** why, while degraded: the last kernel failure (GET /api/blocks, the log) */
  degradedReason: string | null;
  /** entries the kernel refused on their own merits (they stay blocked in userspace): ampguard_kernel_rejected_total */
  readonly kernelRejected: Record<'invalid' | 'full', number>;
  /** offenders not blocked at all: their prefix covers an allowlisted address, the address is no client's, or the table is full */
  readonly refused: Record<'allowlist' | 'invalid' | 'full', number>;
}

/** A block by hand that cannot be made; the message says why (the API answers 400 with it). */
export class BlockRefusedError extends Error {
  readonly code = 'E_REFUSED';
}

/** What the enforcer tells other processes that keep a copy of the block table (cluster workers). */
type BlockChange =
  /** `manual`: an operator's (the fleet shares those as verdicts; the ladder's travel as evidence) */
  | { readonly kind: 'block'; readonly prefix: string; readonly ttlMs: number; readonly manual?: true }
  | { readonly kind: 'unblock'; readonly prefix: string };

interface BlockView {
  readonly prefix: string;
  readonly expiresInSec: number;
  readonly expiresInMs: number;
  readonly where: BlockMode;
}

export class Enforcer {
  readonly blocks: BlockTable;
  /** mode off: what would have been blocked, so each prefix is logged once per timeout */
  private readonly wouldBlock: BlockTable;
  /** block.mode off: what would have been blocked (the replay counts the queries it would have cost) */
  get wouldBlocked(): BlockTable {
    return this.wouldBlock;
  }
  readonly stats: EnforcerStats = {
    blocksByMode: { ipset: 0, nftables: 0, userspace: 0, off: 0 },
    kernelErrors: 0,
    degraded: false,
    degradedReason: null,
    kernelRejected: { invalid: 0, full: 0 },
    refused: { allowlist: 0, invalid: 0, full: 0 },
  };
  /** kernel work to do: batches, retries, degrade and recovery */
  private readonly queue: KernelQueue;
  /** every kernel command of this enforcer runs after the one before: a check never races a batch or an unblock */
  private kernelTail: Promise<unknown> = Promise.resolve();
  /** bumped by every batch recorded and every removal: the reconciler's look is stale across one */
  private kernelGeneration = 0;
  /** the periodic check of the kernel against the table (docs/enforcement.md, "Drift") */
  readonly reconciler: Reconciler;
  private readonly recentEvents = new RecentBlocks();
  /** refusals are logged at most once per second per reason (an attacker can cause them at line rate) */
  private readonly lastRefusalLog: Record<string, number> = {};
  onChange: ((change: BlockChange) => void) | null = null;

  constructor(
    private sink: BlockSink,
    private readonly maxElements: number,
    private readonly settings: () => PolicySettings,
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.blocks = new BlockTable(maxElements, clock);
    this.wouldBlock = new BlockTable(maxElements, clock);
    this.queue = new KernelQueue({
      sink,
      maxElements,
      clock,
      log,
      stillBlocked: (prefix) => this.blocks.expiresAt(prefix) !== undefined,
      serial: (fn) => this.serial(fn),
      recordAdded: (batch, r) => this.recordAdded(batch, r),
      kernelFailure: (error) => this.kernelFailure(error),
      onDegradedChange: () => this.updateDegraded(),
    });
    this.reconciler = new Reconciler({
      sink,
      blocks: this.blocks,
      clock,
      log,
      serial: (fn) => this.serial(fn),
      queued: (prefix) => this.queue.has(prefix),
      generation: () => this.kernelGeneration,
      recordAdded: (batch, r) => this.recordAdded(batch, r),
      kernelFailure: (error) => this.kernelFailure(error),
      onFailing: () => this.updateDegraded(),
    });
  }

  /** Starts the periodic kernel check (kernel modes only; the owner of the kernel sets calls it once). */
  startReconciling(): void {
    if (this.kernelMode) this.reconciler.start();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.kernelTail.then(fn, fn).finally(() => this.kernelGeneration++);
    this.kernelTail = run.catch(() => undefined);
    return run;
  }

  private updateDegraded(): void {
    const reason = this.reconciler.failing ?? this.queue.degraded;
    this.stats.degraded = reason !== null;
    this.stats.degradedReason = reason;
  }

  get mode(): BlockMode {
    return this.sink.mode;
  }

  private get kernelMode(): boolean {
    return this.sink.mode === 'ipset' || this.sink.mode === 'nftables';
  }

  /** Loads what the kernel set already holds, so a restart forgets nobody. */
  async loadKernelMembers(): Promise<number> {
    const members = await this.sink.list();
    if (!members) return 0;
    const now = this.clock();
    const s = this.settings();
    let loaded = 0;
    for (const m of members) {
      const key = m.network ? networkKey(m.prefix, m.family) : prefixKey(m.prefix.split('/')[0] as string, m.family, s.prefixV4, s.prefixV6);
      // a member from before the allowlist (or the prefix length) changed may now cover an allowlisted address
      const covered = allowlistError(key, m.family, s);
      if (covered) {
        const r = await this.sink.remove({ prefix: m.prefix, family: m.family, network: m.network });
        this.log.warn({ prefix: key, err: covered, removed: r.ok }, 'kernel set member removed: it covers an allowlisted address');
        continue;
      }
      const ttlMs = (m.timeoutSec > 0 ? m.timeoutSec * 1000 : s.blockTimeoutMs);
      if (!this.blocks.add(key, now + ttlMs, now)) break;
      this.blocks.place(key, { family: m.family, network: m.network === true });
      this.blocks.markKernel(key, true);
      loaded++;
    }
    return loaded;
  }

  /** Packet-path step 7. Returns true when the tripping reply must be dropped. */
  onOffender(o: Offender, now: number): boolean {
    const s = this.settings();
    const target = blockTarget(o.address, s);
    // the ladder may name a wider network than the budget prefix (an aggregate): that is the block key
    const prefix = o.prefix;
    const network = target.ok && prefix !== target.prefix;
    const loopback = target.ok ? holdsLoopback(prefix, o.family) : null;
    const covered = network ? allowlistError(prefix, o.family, s) : null;
    if (!target.ok || loopback || covered) {
      const reason = !target.ok ? target.reason : loopback ? 'invalid' : 'allowlist';
      this.stats.refused[reason]++;
      this.logRefusal(reason, now, { address: o.address, prefix, err: !target.ok ? target.error : (loopback ?? covered) });
      // the tripping reply is still not sent: only this exact address loses it
      return this.sink.mode !== 'off';
    }
    if (this.sink.mode === 'off') {
      if (!this.wouldBlock.isBlocked(prefix, now)) {
        this.wouldBlock.add(prefix, now + s.blockTimeoutMs, now);
        this.stats.blocksByMode.off++;
        this.remember({ prefix, address: o.address, reason: o.cause ?? 'over_budget', level: o.level ?? 'prefix', charged: o.charged, dryRun: true }, s.blockTimeoutMs);
        this.log.warn({ address: o.address, prefix, charged: o.charged, rule: `${s.rateText} burst ${s.burst}`, mode: 'off' }, 'prefix over budget, not blocked (block.mode off)');
      }
      return false;
    }
    if (this.blocks.isBlocked(prefix, now)) return true;
    if (!this.blocks.add(prefix, now + s.blockTimeoutMs, now)) {
      this.stats.refused.full++;
      this.logRefusal('full', now, { address: o.address, prefix, err: `block.max_elements (${this.maxElements}) prefixes are blocked already` });
      return true;
    }
    this.onChange?.({ kind: 'block', prefix, ttlMs: s.blockTimeoutMs });
    this.stats.blocksByMode[this.sink.mode]++;
    this.remember({ prefix, address: o.address, reason: o.cause ?? 'over_budget', level: o.level ?? 'prefix', charged: o.charged }, s.blockTimeoutMs);
    this.log.warn(
      {
        address: o.address, prefix, charged: o.charged, rule: `${s.rateText} burst ${s.burst}`, timeout_s: s.blockTimeoutMs / 1000, mode: this.sink.mode,
        level: o.level ?? 'prefix', reason: o.cause ?? 'over_budget',
      },
      'prefix blocked',
    );
    // a network goes into the kernel's network sets unless the kernel cannot hold it (loopback, the unspecified network)
    if (target.kernel && (!network || networkHoldable(prefix, o.family))) this.enqueue(prefix, o.family, now + s.blockTimeoutMs, network);
    return true;
  }

  /**
   * A block by hand (CLI, API): same tables, same timeout (or `ttlMs`: what is
   * left of a site verdict made on another node). Throws BlockRefusedError when it cannot be made.
   */
  blockByHand(address: string, ttlMs?: number): string {
    const s = this.settings();
    const target = blockTarget(address, s);
    if (!target.ok) throw new BlockRefusedError(target.reason === 'allowlist' ? `not blocked: ${target.error} (block.allowlist)` : `not blocked: ${target.error}`);
    const { prefix, family } = target;
    const now = this.clock();
    const ttl = ttlMs ?? s.blockTimeoutMs;
    if (!this.blocks.add(prefix, now + ttl, now)) {
      throw new BlockRefusedError(`not blocked: block.max_elements (${this.maxElements}) prefixes are blocked already`);
    }
    this.onChange?.({ kind: 'block', prefix, ttlMs: ttl, manual: true });
    if (target.kernel) this.enqueue(prefix, family, now + ttl, false);
    this.remember({ prefix, address: target.address, reason: 'manual', level: 'prefix', charged: 0 }, ttl);
    this.log.warn({ address: target.address, prefix, mode: this.sink.mode, kernel: target.kernel && this.kernelMode, level: 'prefix', reason: 'manual' }, 'prefix blocked by hand');
    return prefix;
  }

  /**
   * A network blocked by hand (`blocks add NET/LEN`): the ladder never blocks
   * a network (docs/defence.md), so a kernel drop of a whole network is the
   * operator's, for a packet flood that threatens the frontend itself. Only at
   * the aggregate length, the one the packet path checks in userspace too.
   * `ttlMs`: what is left of a site verdict made on another node (docs/fleet.md).
   * Throws BlockRefusedError when it cannot be made.
   */
  blockNetworkByHand(address: string, family: 4 | 6, bits: number, ttlMs?: number): string {
    const s = this.settings();
    const aggBits = family === 4 ? s.aggregate.prefixV4 : s.aggregate.prefixV6;
    if (!s.aggregate.enabled) throw new BlockRefusedError('not blocked: a network is blocked at the aggregate length, and policy.large_response.aggregate is off');
    if (bits !== aggBits) throw new BlockRefusedError(`not blocked: a network is blocked at the aggregate length /${aggBits} (policy.large_response.aggregate.prefix_v${family}), not /${bits}`);
    const target = blockTarget(address, s);
    if (!target.ok) throw new BlockRefusedError(target.reason === 'allowlist' ? `not blocked: ${target.error} (block.allowlist)` : `not blocked: ${target.error}`);
    const key = prefixKey(target.address, family, bits, bits);
    const covered = allowlistError(key, family, s);
    if (covered) throw new BlockRefusedError(`not blocked: ${covered} (block.allowlist)`);
    const now = this.clock();
    const ttl = ttlMs ?? s.blockTimeoutMs;
    if (!this.blocks.add(key, now + ttl, now)) {
      throw new BlockRefusedError(`not blocked: block.max_elements (${this.maxElements}) prefixes are blocked already`);
    }
    this.onChange?.({ kind: 'block', prefix: key, ttlMs: ttl, manual: true });
    if (networkHoldable(key, family)) this.enqueue(key, family, now + ttl, true);
    this.remember({ prefix: key, address: target.address, reason: 'manual', level: 'network', charged: 0 }, ttl);
    this.log.warn({ prefix: key, mode: this.sink.mode, level: 'network', reason: 'manual' }, 'network blocked by hand');
    return key;
  }

  async unblock(address: string): Promise<string> {
    return (await this.unblockAddress(address)).prefix;
  }

  /**
   * Unblocks an address by hand: its prefix, and every blocked network that
   * holds it (a network from an earlier run's aggregate blocks), which is lifted
   * as a whole and named, so that the answer never says "unblocked" while the
   * address stays dropped (docs/defence.md). The networks are read before the
   * first await: a fleet verdict may lift one meanwhile, and the answer must
   * still name it. `networks: false` lifts the prefix only: a fleet peer's
   * address verdict, whose networks come as verdicts of their own (docs/fleet.md).
   */
  async unblockAddress(address: string, opts: { networks?: boolean } = {}): Promise<{ prefix: string; networks: string[] }> {
    const s = this.settings();
    // an allowlisted address may still have to be unblocked (a block from before the allowlist changed)
    const target = blockTarget(address, { prefixV4: s.prefixV4, prefixV6: s.prefixV6, allowlist: [] });
    if (!target.ok) throw new BlockRefusedError(target.error);
    const { prefix, family } = target;
    const holding: number[] = [];
    if (opts.networks !== false) {
      const now = this.clock();
      const budgetBits = family === 4 ? s.prefixV4 : s.prefixV6;
      for (let bits = budgetBits - 1; bits >= 1; bits--) if (this.blocks.isBlocked(prefixKey(target.address, family, bits, bits), now)) holding.push(bits);
    }
    this.blocks.remove(prefix);
    this.onChange?.({ kind: 'unblock', prefix });
    this.queue.delete(prefix);
    if (this.kernelMode) {
      const r = await this.serial(() => this.sink.remove({ prefix, family }));
      if (!r.ok) this.kernelFailure(r.error);
    }
    const networks: string[] = [];
    for (const bits of holding) networks.push(await this.unblockNetwork(target.address, family, bits));
    this.log.warn({ address: target.address, prefix, networks }, 'prefix unblocked by hand');
    return { prefix, networks };
  }

  /**
   * Lifts every network block (keys at a length other than the budget
   * prefix's): what turning the aggregate budgets off by SIGHUP does, so that
   * no block stays listed, or in the kernel, that nothing would make again.
   */
  async liftNetworks(): Promise<string[]> {
    const s = this.settings();
    const lifted: string[] = [];
    for (const b of this.blocks.list(this.clock())) {
      const slash = b.prefix.indexOf('/');
      if (slash < 0) continue;
      const family = b.prefix.includes(':') ? 6 : 4;
      const bits = Number(b.prefix.slice(slash + 1));
      if (bits === (family === 4 ? s.prefixV4 : s.prefixV6)) continue;
      lifted.push(await this.unblockNetwork(b.prefix.slice(0, slash), family, bits, true));
    }
    if (lifted.length > 0) this.log.warn({ networks: lifted }, 'network blocks lifted: aggregate budgets are off');
    return lifted;
  }

  /**
   * Removes the block of a network the ladder's aggregate budgets made (its key
   * is the network at its own length, as `blocks list` shows it), by hand.
   */
  async unblockNetwork(address: string, family: 4 | 6, bits: number, quiet = false): Promise<string> {
    const key = prefixKey(address, family, bits, bits);
    this.blocks.remove(key);
    this.onChange?.({ kind: 'unblock', prefix: key });
    this.queue.delete(key);
    if (this.kernelMode) {
      const r = await this.serial(() => this.sink.remove({ prefix: key, family, network: true }));
      if (!r.ok) this.kernelFailure(r.error);
    }
    if (!quiet) this.log.warn({ prefix: key }, 'network unblocked by hand');
    return key;
  }

  /** whether a prefix (or network) is blocked now: rung 3 of the ladder, for /api/top */
  isBlocked(prefix: string): boolean {
    return this.blocks.isBlocked(prefix, this.clock());
  }

  /** Live blocks (a page of them: `offset`, `limit`), and where each is really enforced: the kernel set only once the kernel took it. */
  list(offset = 0, limit = Infinity): BlockView[] {
    const now = this.clock();
    return this.blocks.list(now, offset, limit).map((b) => ({
      prefix: b.prefix,
      expiresInSec: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
      expiresInMs: Math.max(0, b.expiresAt - now),
      where: b.inKernel && this.kernelMode ? this.sink.mode : 'userspace',
    }));
  }

  /** The latest block events, newest first (at most RECENT_BLOCKS, recent-blocks.ts). */
  recent(): readonly BlockEvent[] {
    return this.recentEvents.list();
  }

  private remember(e: Omit<BlockEvent, 'at' | 'expiresAt' | 'rung'>, ttlMs: number): void {
    const at = this.wallClock();
    this.recentEvents.push({ ...e, rung: 3, at, expiresAt: at + ttlMs });
  }

  /** O(1) amortised: the table keeps its size and reaps expired entries from a heap. */
  blockedCount(): number {
    return this.blocks.count(this.clock());
  }

  /** entries waiting for the kernel (while it fails: the degraded queue) */
  get pending(): number {
    return this.queue.size;
  }

  async close(): Promise<void> {
    this.queue.stopScheduling();
    await this.reconciler.stop();
    if (this.kernelMode) await this.queue.close();
    await this.sink.close();
  }

  private logRefusal(reason: string, now: number, fields: Record<string, unknown>): void {
    const last = this.lastRefusalLog[reason];
    if (last !== undefined && now - last < 1000) return;
    this.lastRefusalLog[reason] = now;
    this.log.warn({ ...fields, reason }, 'prefix not blocked');
  }

  private enqueue(prefix: string, family: 4 | 6, expiresAt: number, network: boolean): void {
    if (this.kernelMode) this.queue.add(prefix, family, expiresAt, network);
  }

  /** Marks what the kernel now holds, counts and logs what it refused. */
  private recordAdded(batch: readonly KernelEntry[], r: AddResult): void {
    const notIn = new Set<string>();
    for (const e of r.pending) notIn.add(e.prefix);
    for (const x of r.rejected) {
      notIn.add(x.entry.prefix);
      this.stats.kernelRejected[x.reason]++;
      this.blocks.markKernel(x.entry.prefix, false);
      // userspace only from now on: no check puts it back
      this.blocks.place(x.entry.prefix, null);
    }
    if (r.rejected.length > 0) {
      const first = r.rejected[0];
      this.log.warn(
        { mode: this.sink.mode, refused: r.rejected.length, prefix: first?.entry.prefix, reason: first?.reason, err: first?.error },
        'kernel set refused entries; they stay blocked in userspace',
      );
    }
    for (const e of batch) {
      if (notIn.has(e.prefix)) continue;
      this.blocks.place(e.prefix, { family: e.family, network: e.network === true });
      this.blocks.markKernel(e.prefix, true);
    }
  }

  private kernelFailure(error: string | undefined): void {
    this.stats.kernelErrors++;
    this.log.warn({ mode: this.sink.mode, err: error }, 'kernel command failed');
  }
}

/**
 * The userspace key of a network the kernel lists ("198.18.2.0/24",
 * "fd00:a3b1::/48"): prefixKey at the network's own length, the form the
 * ladder names an aggregate offender with, so blocked-client finds it.
 */
function networkKey(text: string, family: 4 | 6): string {
  const slash = text.indexOf('/');
  const width = family === 4 ? 32 : 128;
  const len = slash < 0 ? width : Number(text.slice(slash + 1));
  const bits = Number.isInteger(len) && len >= 0 && len <= width ? len : width;
  return prefixKey(prefixAddress(text), family, bits, bits);
}

/**
 * Whether the kernel may hold a network: never loopback (127/8, or an IPv6
 * network whose address is all zero, which covers ::1 and every IPv4-mapped
 * address; ipset's hash:net would take "::/48" without a word).
 */
function networkHoldable(prefix: string, family: 4 | 6): boolean {
  const address = prefixAddress(prefix);
  if (family === 4) return !address.startsWith('127.') && !address.startsWith('0.');
  return /[1-9a-f]/i.test(address);
}

function allowlistError(prefix: string, family: 4 | 6, s: PolicySettings): string | null {
  const covered = allowlistedInside(prefix, family, s.allowlist);
  return covered ? `${prefix} contains the allowlisted ${covered}` : null;
}
