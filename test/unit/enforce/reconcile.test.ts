// Drift repair with a fake clock and a fake kernel: what the pure plan puts
// back, confirms and stops claiming; and the Reconciler driving a real
// Enforcer, so the listing's `where`, degraded with its reason, and the repair
// counters are checked together (docs/enforcement.md, "Drift").
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { BlockEntry } from '../../../src/policy/block-table.js';
import { affectedSets, AUDIT_EVERY, MIN_RESTORE_MS, needMembers, planMembers } from '../../../src/enforce/reconcile.js';
import { elementKey, type AddResult, type BlockSink, type KernelEntry, type KernelLook, type SinkResult } from '../../../src/enforce/sink.js';
import { Enforcer } from '../../../src/enforce/enforcer.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';

const setName = (family: 4 | 6, network: boolean): string => `s${family}${network ? 'n' : ''}`;
const entry = (prefix: string, expiresAt: number, inKernel: boolean, family: 4 | 6 = 4, network = false): BlockEntry => ({ prefix, expiresAt, inKernel, place: { family, network } });
const members = (m: Record<string, Record<string, number>>): Map<string, Map<string, number>> => new Map(Object.entries(m).map(([k, v]) => [k, new Map(Object.entries(v))]));

describe('planMembers', () => {
  const now = 10_000;
  const none = (): boolean => false;

  it('puts back what the kernel lost with the time it has left, and stops claiming it meanwhile', () => {
    const plan = planMembers([entry('198.18.0.10', now + 42_300, true), entry('198.18.0.11', now + 60_000, true)], members({ s4: { '198.18.0.11': 60 } }), setName, now, none);
    expect(plan.unconfirm).toEqual(['198.18.0.10']);
    expect(plan.restore).toEqual([{ prefix: '198.18.0.10', family: 4, timeoutSec: 43 }]);
    expect(plan.confirm).toEqual([]);
    expect(plan.refreshed).toBe(0);
  });

  it('confirms an entry listed as userspace once the kernel holds it', () => {
    const plan = planMembers([entry('198.18.0.10', now + 30_000, false)], members({ s4: { '198.18.0.10': 30 } }), setName, now, none);
    expect(plan).toEqual({ restore: [], refreshed: 0, confirm: ['198.18.0.10'], unconfirm: [] });
  });

  it('refreshes a kernel expiry earlier than the table, on both sides of the slack', () => {
    const early = planMembers([entry('198.18.0.10', now + 30_000, true)], members({ s4: { '198.18.0.10': 7 } }), setName, now, none);
    expect(early.restore).toEqual([{ prefix: '198.18.0.10', family: 4, timeoutSec: 30 }]);
    expect(early.refreshed).toBe(1);
    expect(early.unconfirm).toEqual([]);
    // 28 s left in the kernel for 30 in the table: within the 2 s slack (the kernel counts whole seconds)
    expect(planMembers([entry('198.18.0.10', now + 30_000, true)], members({ s4: { '198.18.0.10': 28 } }), setName, now, none).restore).toEqual([]);
    // 0: kept without a timeout, nothing to refresh
    expect(planMembers([entry('198.18.0.10', now + 30_000, true)], members({ s4: { '198.18.0.10': 0 } }), setName, now, none).restore).toEqual([]);
  });

  it('leaves alone what is expired, nearly expired, queued for its first batch, userspace only, or in a set not read', () => {
    const entries: BlockEntry[] = [
      entry('198.18.0.1', now, true), // expired now
      entry('198.18.0.2', now + MIN_RESTORE_MS - 1, true), // too little left to put back, but no longer claimed
      entry('198.18.0.3', now + 30_000, false), // waiting in the flush queue
      { prefix: '127.0.0.1', expiresAt: now + 30_000, inKernel: false, place: null }, // loopback: userspace only
      entry('fd00:a3b1:0:0:0:0:0:0/64', now + 30_000, true, 6), // the IPv6 set was not read
    ];
    const plan = planMembers(entries, members({ s4: {} }), setName, now, (p) => p === '198.18.0.3');
    expect(plan.restore).toEqual([]);
    expect(plan.unconfirm).toEqual(['198.18.0.2']);
    // exactly MIN_RESTORE_MS left is put back
    expect(planMembers([entry('198.18.0.2', now + MIN_RESTORE_MS, true)], members({ s4: {} }), setName, now, none).restore).toHaveLength(1);
  });

  it('matches IPv6 prefixes and networks however the kernel spells them', () => {
    const entries = [entry('fd00:a3b1:0:0:0:0:0:0/64', now + 30_000, true, 6), entry('198.18.2.0/24', now + 30_000, true, 4, true), entry('198.18.3.4', now + 30_000, true, 4, true)];
    const kernel = members({ s6: { [elementKey('fd00:a3b1::', 6, false)]: 30 }, s4n: { [elementKey('198.18.2.0/24', 4, true)]: 30, [elementKey('198.18.3.4', 4, true)]: 30 } });
    expect(planMembers(entries, kernel, setName, now, none)).toEqual({ restore: [], refreshed: 0, confirm: [], unconfirm: [] });
    expect(elementKey('198.18.3.4', 4, true)).toBe('198.18.3.4/32');
    expect(elementKey('fd00:a3b1::', 6, false)).toBe('fd00:a3b1:0:0:0:0:0:0');
  });
});

describe('when a check reads the members', () => {
  const look = (...counts: (number | null)[]): KernelLook => ({ ok: true, missing: [], sets: counts.map((count, i) => ({ name: `s${i}`, family: 4, network: false, count, members: null })) });
  it('reads them when the kernel counts fewer than the table believes, never when it counts as many', () => {
    expect(needMembers(look(3, 1), 5, false, false)).toBe(true);
    expect(needMembers(look(3, 2), 5, false, false)).toBe(false);
    expect(needMembers(look(3, 3), 5, false, false)).toBe(false);
    expect(needMembers(look(3, null), 0, false, false)).toBe(true);
    expect(needMembers(look(3, 2), 5, true, false)).toBe(true);
    expect(needMembers(look(3, 2), 5, false, true)).toBe(true);
  });
  it('a missing table affects every set, a rule only its own', () => {
    expect([...affectedSets([{ what: 'rule', set: 's4', detail: '' }], ['s4', 's6'])]).toEqual(['s4']);
    expect([...affectedSets([{ what: 'rule', set: 's4', detail: '' }, { what: 'table', set: '', detail: '' }], ['s4', 's6'])]).toEqual(['s4', 's6']);
  });
});

/** A kernel with one set per family: the test deletes its rule or members and breaks its repair. */
class FakeKernel implements BlockSink {
  readonly mode = 'ipset' as const;
  rule = true;
  repairFails: string | null = null;
  readFails = false;
  sets = new Map<string, Map<string, number>>([['s4', new Map()], ['s6', new Map()], ['s4n', new Map()], ['s6n', new Map()]]);
  starts = 0;
  async start(): Promise<SinkResult> {
    this.starts++;
    if (this.repairFails) return { ok: false, error: this.repairFails };
    this.rule = true;
    return { ok: true };
  }
  async add(entries: readonly KernelEntry[]): Promise<AddResult> {
    for (const e of entries) this.sets.get(setName(e.family, e.network === true))?.set(elementKey(e.network ? e.prefix : e.prefix.split('/')[0] as string, e.family, e.network === true), e.timeoutSec);
    return { ok: true, rejected: [], pending: [] };
  }
  async remove(e: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    this.sets.get(setName(e.family, e.network === true))?.delete(elementKey(e.prefix, e.family, e.network === true));
    return { ok: true };
  }
  async list(): Promise<KernelEntry[] | null> {
    return [];
  }
  async inspect(): Promise<KernelLook> {
    if (this.readFails) return { ok: false, error: 'ipset list -t: exit 1: Kernel error received: Operation not permitted', missing: [], sets: [] };
    return {
      ok: true,
      missing: this.rule ? [] : [{ what: 'rule', set: 's4', detail: 'iptables raw PREROUTING DROP for s4 port 53 is missing' }],
      sets: [...this.sets].map(([name, m]) => ({ name, family: name.startsWith('s4') ? 4 : 6, network: name.endsWith('n'), count: m.size, members: null })),
    };
  }
  async readMembers(names: readonly string[]): Promise<Map<string, Map<string, number>>> {
    return new Map([...this.sets].filter(([n]) => names.includes(n)).map(([n, m]) => [n, new Map(m)]));
  }
  setName(family: 4 | 6, network: boolean): string {
    return setName(family, network);
  }
  async close(): Promise<void> {}
}

describe('Reconciler', () => {
  const settings = compilePolicy(configSchema.parse({ block: { timeout: 60 } }));
  const log = pino({ level: 'silent' });

  async function blocked(kernel: FakeKernel, now: { t: number }): Promise<Enforcer> {
    const e = new Enforcer(kernel, 1000, () => settings, log, () => now.t);
    e.blockByHand('198.18.0.10');
    e.blockByHand('198.18.0.11');
    await e.close(); // flushes the batch; the reconciler is driven by hand below
    return e;
  }
  const where = (e: Enforcer): string[] => e.list().map((b) => `${b.prefix} ${b.where}`);

  it('puts a deleted rule back; the members stay and are listed in the kernel', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    expect(where(e)).toEqual(['198.18.0.10 ipset', '198.18.0.11 ipset']);
    kernel.rule = false;
    expect(await e.reconciler.checkNow()).toBe('repaired');
    expect(kernel.rule).toBe(true);
    expect(e.reconciler.repairs.rule).toBe(1);
    expect(where(e)).toEqual(['198.18.0.10 ipset', '198.18.0.11 ipset']);
    expect(await e.reconciler.checkNow()).toBe('ok');
    expect(e.reconciler.checks).toEqual({ ok: 1, repaired: 1, failed: 0 });
  });

  it('puts back the members of a set emptied by hand with the time each has left', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    now.t = 20_500;
    kernel.sets.get('s4')?.clear();
    expect(await e.reconciler.checkNow()).toBe('repaired');
    expect([...(kernel.sets.get('s4') ?? [])]).toEqual([['198.18.0.10', 40], ['198.18.0.11', 40]]);
    expect(e.reconciler.repairs.members).toBe(2);
    expect(where(e)).toEqual(['198.18.0.10 ipset', '198.18.0.11 ipset']);
  });

  it('while the repair fails: degraded with the reason, the listing says userspace; then repaired and listed in the kernel again', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    kernel.rule = false;
    kernel.sets.get('s4')?.clear();
    kernel.repairFails = 'ipset throttled-ips exists as hash:net family inet, not hash:ip family inet';
    expect(await e.reconciler.checkNow()).toBe('failed');
    expect(where(e)).toEqual(['198.18.0.10 userspace', '198.18.0.11 userspace']);
    expect(e.stats.degraded).toBe(true);
    expect(e.stats.degradedReason).toBe(kernel.repairFails);
    expect(e.stats.kernelErrors).toBe(1);
    // the table still blocks them (userspace keeps dropping)
    expect(e.isBlocked('198.18.0.10')).toBe(true);
    expect(await e.reconciler.checkNow()).toBe('failed');
    expect(e.stats.kernelErrors).toBe(2);
    kernel.repairFails = null;
    now.t = 5000;
    expect(await e.reconciler.checkNow()).toBe('repaired');
    expect(e.stats.degraded).toBe(false);
    expect(e.stats.degradedReason).toBe(null);
    expect(where(e)).toEqual(['198.18.0.10 ipset', '198.18.0.11 ipset']);
    expect(kernel.sets.get('s4')?.get('198.18.0.10')).toBe(55);
  });

  it('when the kernel cannot be read, claims nothing: every entry says userspace until a check confirms it', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    kernel.readFails = true;
    expect(await e.reconciler.checkNow()).toBe('failed');
    expect(where(e)).toEqual(['198.18.0.10 userspace', '198.18.0.11 userspace']);
    expect(e.stats.degradedReason).toMatch(/Operation not permitted/);
    kernel.readFails = false;
    expect(await e.reconciler.checkNow()).toBe('ok');
    expect(where(e)).toEqual(['198.18.0.10 ipset', '198.18.0.11 ipset']);
    expect(e.reconciler.repairs.members).toBe(0);
  });

  it('puts back nothing an unblock removed while the check read the kernel', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    kernel.sets.get('s4')?.clear();
    const read = kernel.readMembers.bind(kernel);
    // the operator unblocks .10 while the members are being read
    kernel.readMembers = async (names) => {
      const m = await read(names);
      await e.unblock('198.18.0.10');
      return m;
    };
    await e.reconciler.checkNow();
    kernel.readMembers = read;
    expect(await e.reconciler.checkNow()).toBe('repaired');
    expect([...(kernel.sets.get('s4')?.keys() ?? [])]).toEqual(['198.18.0.11']);
    expect(where(e)).toEqual(['198.18.0.11 ipset']);
  });

  it('refreshes a member whose kernel expiry is earlier than the listing (a re-block the kernel did not take)', async () => {
    const kernel = new FakeKernel();
    const now = { t: 0 };
    const e = await blocked(kernel, now);
    kernel.sets.get('s4')?.set('198.18.0.10', 7);
    // counts agree: only the audit reads the members
    for (let i = 0; i < AUDIT_EVERY - 1; i++) expect(await e.reconciler.checkNow()).toBe('ok');
    expect(await e.reconciler.checkNow()).toBe('repaired');
    expect(kernel.sets.get('s4')?.get('198.18.0.10')).toBe(60);
    expect(e.reconciler.repairs.expiry).toBe(1);
  });
});
