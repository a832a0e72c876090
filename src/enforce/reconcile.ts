// Drift repair, off the packet path, in the process that owns the kernel sets
// (the single process, or the cluster primary): every few seconds one cheap
// look at the kernel (sink.inspect(): a few processes, never one per entry)
// is compared with what the block table believes. A missing table, set or DROP
// rule is put back (sink.start(), which creates what is missing and rebuilds a
// set left with other parameters), the members the kernel lost are added back
// with the time each has left, and until then the entries say `userspace` in
// the listing: it never claims a drop the kernel does not do. While the kernel
// cannot be read or repaired, enforcement is degraded, with the reason, and
// the userspace table keeps dropping. docs/enforcement.md, "Drift".
// Feeds ampguard_kernel_checks_total, ampguard_kernel_repairs_total,
// ampguard_kernel_errors_total and ampguard_enforcement_degraded.
import type { Logger } from 'pino';
import type { BlockEntry, BlockTable } from '../policy/block-table.js';
import { elementKey, prefixAddress, type AddResult, type BlockSink, type KernelEntry, type KernelLook, type MissingPart } from './sink.js';
import { monotonicNow, type Clock } from '../time/clock.js';

/** how often the kernel is looked at, at most */
const CHECK_INTERVAL_MS = 2000;
/**
 * The next check waits at least this many times as long as the last look at
 * the kernel took, so looking keeps the checker busy a fifth of the time at
 * most (nft 1.0.6 fetches every element for any listing of the table: about a
 * second at 100,000 members; docs/enforcement.md has the figures).
 */
const COST_FACTOR = 5;
/** even when the counts agree, the members are read every this many checks (an entry deleted by hand can hide behind an expired one the kernel has not collected yet) */
export const AUDIT_EVERY = 30;
/** member comparisons put off in a row at most, while batches keep changing the kernel during the look */
const MAX_STALE_LOOKS = 2;
/** an entry with less than this left is not put back */
export const MIN_RESTORE_MS = 1000;
/** a kernel expiry this much (s) earlier than the table's is refreshed */
const EXPIRY_SLACK_SEC = 2;

type RepairWhat = 'table' | 'set' | 'rule' | 'members' | 'expiry' | 'leftover';
type CheckResult = 'ok' | 'repaired' | 'failed';

interface MemberPlan {
  /** entries to add (back) with the time each has left */
  readonly restore: KernelEntry[];
  /** of restore, entries still in the kernel whose kernel expiry is too early */
  readonly refreshed: number;
  /** prefixes the kernel holds (listed with the kernel mode) */
  readonly confirm: string[];
  /** prefixes believed in the kernel that it lacks (listed as userspace until restored) */
  readonly unconfirm: string[];
}

/** the element an entry is in its set as: the network itself, or the address of its budget prefix */
function entryElement(b: BlockEntry): string | null {
  if (!b.place) return null;
  return elementKey(b.place.network ? b.prefix : prefixAddress(b.prefix), b.place.family, b.place.network);
}

/**
 * Compares the table's entries that belong in the kernel with the members the
 * kernel listed (per set name; sets not read are skipped). Pure: `now` is the
 * table's clock, members carry the kernel's seconds left.
 */
export function planMembers(
  entries: Iterable<BlockEntry>,
  members: ReadonlyMap<string, ReadonlyMap<string, number>>,
  setName: (family: 4 | 6, network: boolean) => string,
  now: number,
  queued: (prefix: string) => boolean,
): MemberPlan {
  const restore: KernelEntry[] = [];
  const confirm: string[] = [];
  const unconfirm: string[] = [];
  let refreshed = 0;
  for (const b of entries) {
    const element = entryElement(b);
    if (element === null || !b.place) continue;
    const set = members.get(setName(b.place.family, b.place.network));
    const leftMs = b.expiresAt - now;
    if (!set || leftMs <= 0) continue;
    const entry: KernelEntry = b.place.network ? { prefix: b.prefix, family: b.place.family, timeoutSec: Math.ceil(leftMs / 1000), network: true } : { prefix: b.prefix, family: b.place.family, timeoutSec: Math.ceil(leftMs / 1000) };
    const kernelLeft = set.get(element);
    if (kernelLeft !== undefined) {
      if (!b.inKernel) confirm.push(b.prefix);
      // 0: the kernel keeps it without a timeout, nothing to refresh
      if (kernelLeft > 0 && kernelLeft < leftMs / 1000 - EXPIRY_SLACK_SEC && leftMs >= MIN_RESTORE_MS) {
        restore.push(entry);
        refreshed++;
      }
      continue;
    }
    if (b.inKernel) unconfirm.push(b.prefix);
    // a block still waiting for its first batch is the flush's to add
    if (!queued(b.prefix) && leftMs >= MIN_RESTORE_MS) restore.push(entry);
  }
  return { restore, refreshed, confirm, unconfirm };
}

/** The sets whose members a missing part leaves undropped: '' (the table, the chain) is every set. */
export function affectedSets(missing: readonly MissingPart[], all: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const m of missing) {
    if (m.set === '') return new Set(all);
    out.add(m.set);
  }
  return out;
}

/**
 * Whether this check reads the members: while entries wait to be confirmed,
 * after a repair, at each audit, or when the kernel counts fewer members than
 * the table believes it holds.
 */
export function needMembers(look: KernelLook, believedInKernel: number, unconfirmed: boolean, audit: boolean): boolean {
  if (unconfirmed || audit) return true;
  let counted = 0;
  for (const s of look.sets) {
    if (s.count === null) return true;
    counted += s.count;
  }
  return counted < believedInKernel;
}

/** What the reconciler needs from the enforcer that owns the table and the sink. */
interface ReconcileHost {
  readonly sink: BlockSink;
  readonly blocks: BlockTable;
  readonly clock: () => number;
  readonly log: Logger;
  /** runs fn with no other kernel command of the enforcer in flight */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** whether a prefix waits in the flush queue */
  queued(prefix: string): boolean;
  /** counts every batch recorded and every unblock: a look taken across one is stale for the members */
  generation(): number;
  /** marks what a batch put in the kernel and counts what it refused */
  recordAdded(batch: readonly KernelEntry[], r: AddResult): void;
  /** a kernel command failed: counted (ampguard_kernel_errors_total) */
  kernelFailure(error: string | undefined): void;
  /** the reconciler's degraded state changed */
  onFailing(reason: string | null): void;
}

/** The periodic check: a named object with its timer, its counters and its failing reason. */
export class Reconciler {
  readonly repairs: Record<RepairWhat, number> = { table: 0, set: 0, rule: 0, members: 0, expiry: 0, leftover: 0 };
  readonly checks: Record<CheckResult, number> = { ok: 0, repaired: 0, failed: 0 };
  /** why the kernel cannot be read or repaired now; null while it is in step */
  failing: string | null = null;
  /** wall time the last look at the kernel took (inspect, and the members when read), ms: sets the pace */
  lastLookMs = 0;
  /** entries were marked userspace: read the members until they are confirmed again */
  private unconfirmed = false;
  private sinceAudit = 0;
  /** member comparisons put off in a row because the kernel changed during the look */
  private staleLooks = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<CheckResult> | null = null;
  private closed = false;

  constructor(private readonly host: ReconcileHost, private readonly timeNow: Clock = monotonicNow) {}

  start(): void {
    this.schedule(CHECK_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running) await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.checkNow().then(() => this.schedule(Math.max(CHECK_INTERVAL_MS, COST_FACTOR * this.lastLookMs)));
    }, delayMs);
    this.timer.unref();
  }

  /** One check now (the timer's, or a test's); never two at once. */
  checkNow(): Promise<CheckResult> {
    if (this.running) return this.running;
    this.running = this
      .check()
      .catch((err: Error) => this.fail(`kernel check: ${err.message}`, this.setNames))
      .then((result) => {
        this.checks[result]++;
        this.running = null;
        return result;
      });
    return this.running;
  }

  private get setNames(): string[] {
    const s = this.host.sink;
    return [s.setName(4, false), s.setName(6, false), s.setName(4, true), s.setName(6, true)];
  }

  /**
   * Looks without holding the enforcer's kernel lock (a look at 100,000 nft
   * members takes a second; new blocks must not wait for it) and writes under
   * it: a repair or a restore never races a batch or an unblock, and what it
   * puts back is checked against the table right before (an entry unblocked
   * meanwhile is not put back).
   */
  private async check(): Promise<CheckResult> {
    const { sink, blocks, clock, log } = this.host;
    const started = this.timeNow();
    let generation = this.host.generation();
    let look = await sink.inspect();
    this.lastLookMs = this.timeNow() - started;
    if (!look.ok) return this.fail(look.error ?? 'the kernel sets cannot be read', this.setNames);
    let repaired = false;
    if (look.missing.length > 0) {
      // the listing stops claiming these at once, before anything is tried
      this.unconfirm(affectedSets(look.missing, this.setNames));
      log.warn({ mode: sink.mode, missing: look.missing.map((m) => m.detail) }, 'kernel state drifted from the listing, repairing');
      const r = await this.host.serial(() => sink.start());
      if (!r.ok) return this.fail(r.error ?? 'kernel repair failed', []);
      for (const m of look.missing) this.repairs[m.what]++;
      repaired = true;
      generation = this.host.generation();
      look = await sink.inspect();
      if (!look.ok) return this.fail(look.error ?? 'the kernel sets cannot be read', this.setNames);
      if (look.missing.length > 0) return this.fail(`still missing after repair: ${look.missing.map((m) => m.detail).join('; ')}`, []);
    }
    const audit = ++this.sinceAudit >= AUDIT_EVERY;
    const now = clock();
    let restored = 0;
    if (repaired || needMembers(look, blocks.kernelCount(now), this.unconfirmed, audit)) {
      this.sinceAudit = 0;
      const reading = this.timeNow();
      const members = await this.members(look);
      if (!repaired) this.lastLookMs += this.timeNow() - reading;
      if (!members) return this.fail('the kernel set members cannot be read', []);
      // A batch or an unblock went to the kernel while it was read: its entries
      // would look lost (a harmless re-add, but a false repair); compare at the
      // next check, unless blocks keep coming (a flood): then compare anyway.
      if (this.host.generation() !== generation && this.staleLooks < MAX_STALE_LOOKS) {
        this.staleLooks++;
        this.unconfirmed = true;
        return repaired ? 'repaired' : 'ok';
      }
      this.staleLooks = 0;
      const plan = planMembers(blocks.list(now), members, (f, n) => sink.setName(f, n), now, (p) => this.host.queued(p));
      for (const p of plan.unconfirm) blocks.markKernel(p, false);
      for (const p of plan.confirm) blocks.markKernel(p, true);
      if (plan.restore.length > 0) {
        log.warn({ mode: sink.mode, restored: plan.restore.length - plan.refreshed, refreshed: plan.refreshed }, 'kernel set members put back with the time they have left');
        const r = await this.host.serial(() => {
          // unblocked while this check ran: not put back (its own removal waits for this lock, after)
          const still = plan.restore.filter((e) => blocks.expiresAt(e.prefix) !== undefined);
          return still.length === 0 ? Promise.resolve({ ok: true, rejected: [], pending: [] } as AddResult) : sink.add(still).then((x) => {
            this.host.recordAdded(still, x);
            return x;
          });
        });
        if (!r.ok) return this.fail(r.error ?? 'kernel set members could not be put back', []);
        this.repairs.members += plan.restore.length - plan.refreshed;
        this.repairs.expiry += plan.refreshed;
        restored = plan.restore.length;
      }
      this.unconfirmed = false;
    }
    if (this.failing !== null) log.warn({ mode: sink.mode, was: this.failing }, 'kernel enforcement restored');
    this.setFailing(null);
    return repaired || restored > 0 ? 'repaired' : 'ok';
  }

  /** the members of every set: from the look when it carries them (nftables), else one listing per set */
  private async members(look: KernelLook): Promise<Map<string, ReadonlyMap<string, number>> | null> {
    const out = new Map<string, ReadonlyMap<string, number>>();
    const unread: string[] = [];
    for (const s of look.sets) {
      if (s.members) out.set(s.name, s.members);
      else if (s.load) out.set(s.name, s.load());
      else unread.push(s.name);
    }
    if (unread.length === 0) return out;
    const read = await this.host.sink.readMembers(unread);
    if (!read) return null;
    for (const [name, m] of read) out.set(name, m);
    return out;
  }

  /** entries of these sets say userspace until a later check finds them in the kernel */
  private unconfirm(sets: ReadonlySet<string>): void {
    if (sets.size === 0) return;
    const { blocks, sink, clock } = this.host;
    for (const b of blocks.list(clock())) {
      if (b.inKernel && b.place && sets.has(sink.setName(b.place.family, b.place.network))) blocks.markKernel(b.prefix, false);
    }
    this.unconfirmed = true;
  }

  private fail(reason: string, unconfirmSets: readonly string[]): CheckResult {
    this.host.kernelFailure(reason);
    this.unconfirm(new Set(unconfirmSets));
    // the members cannot be vouched for either: read them at the next check that can
    this.unconfirmed = true;
    if (this.failing !== reason) this.host.log.error({ mode: this.host.sink.mode, reason }, 'kernel enforcement degraded: the kernel state cannot be repaired, blocking in userspace');
    this.setFailing(reason);
    return 'failed';
  }

  private setFailing(reason: string | null): void {
    if (this.failing === reason) return;
    this.failing = reason;
    this.host.onFailing(reason);
  }
}
