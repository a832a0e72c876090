// The Enforcer with a fake sink and fake timers: batching, retries, degrade
// and recovery, mode off, and the userspace table holding every block.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { Enforcer } from '../../../src/enforce/enforcer.js';
import type { AddResult, BlockMode, BlockSink, KernelEntry, KernelLook, SinkResult } from '../../../src/enforce/sink.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import type { Offender } from '../../../src/policy/verdict.js';

class FakeSink implements BlockSink {
  batches: KernelEntry[][] = [];
  failing = false;
  members: KernelEntry[] = [];
  /** calls to add() in flight now, and the most ever */
  inFlight = 0;
  maxInFlight = 0;
  /** ms each add() takes (fake timers) */
  latencyMs = 0;
  /** the kernel's capacity: entries past it are refused as full */
  capacity = Infinity;
  constructor(readonly mode: BlockMode) {}
  async start(): Promise<SinkResult> {
    return { ok: true };
  }
  async add(entries: readonly KernelEntry[]): Promise<AddResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      if (this.failing) return { ok: false, error: 'ipset: Kernel error received: Operation not permitted', rejected: [], pending: entries };
      this.batches.push([...entries]);
      const room = Math.max(0, this.capacity - this.batches.flat().length + entries.length);
      const rejected = entries.slice(room).map((entry) => ({ entry, reason: 'full' as const, error: 'Hash is full' }));
      return { ok: true, rejected, pending: [] };
    } finally {
      this.inFlight--;
    }
  }
  removed: Omit<KernelEntry, 'timeoutSec'>[] = [];
  async remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    this.removed.push(entry);
    return { ok: true };
  }
  async list(): Promise<KernelEntry[] | null> {
    return this.members;
  }
  async inspect(): Promise<KernelLook> {
    return { ok: true, missing: [], sets: [] };
  }
  async readMembers(): Promise<Map<string, Map<string, number>>> {
    return new Map();
  }
  setName(family: 4 | 6, network: boolean): string {
    return `s${family}${network ? 'n' : ''}`;
  }
  async close(): Promise<void> {}
}

const settings = compilePolicy(configSchema.parse({ block: { timeout: 60 }, policy: { large_response: { prefix_v6: 64 } } }));
const offender = (address: string, family: 4 | 6 = 4): Offender => ({ address, prefix: address, family, charged: 13000 });
const log = pino({ level: 'silent' });

describe('Enforcer', () => {
  let now = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('blocks in userspace at once and sends the kernel one batch for a burst of offenders', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    for (let i = 0; i < 500; i++) expect(e.onOffender(offender(`198.18.1.${i % 250}`), now)).toBe(true);
    expect(e.blockedCount()).toBe(250);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(25);
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]).toHaveLength(250);
    expect(sink.batches[0]?.[0]).toEqual({ prefix: '198.18.1.0', family: 4, timeoutSec: 60 });
    expect(e.stats.blocksByMode.ipset).toBe(250);
  });

  it('retries a failing kernel, degrades after the retries, keeps every block, and recovers', async () => {
    const sink = new FakeSink('ipset');
    sink.failing = true;
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    e.onOffender(offender('198.18.0.1'), now);
    await vi.advanceTimersByTimeAsync(25);
    expect(e.stats.kernelErrors).toBe(1);
    expect(e.stats.degraded).toBe(false);
    await vi.advanceTimersByTimeAsync(100 + 500 + 2000);
    expect(e.stats.kernelErrors).toBe(4);
    expect(e.stats.degraded).toBe(true);
    expect(e.blocks.isBlocked('198.18.0.1', now)).toBe(true); // never a lost block
    expect(e.list()[0]?.where).toBe('userspace');
    expect(e.pending).toBe(1);
    sink.failing = false;
    e.onOffender(offender('198.18.0.2'), now);
    await vi.advanceTimersByTimeAsync(5000);
    expect(e.stats.degraded).toBe(false);
    expect(sink.batches.flat().map((x) => x.prefix).sort()).toEqual(['198.18.0.1', '198.18.0.2']);
  });

  it('in mode off, logs and counts each prefix once per timeout and drops nothing', async () => {
    const sink = new FakeSink('off');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    for (let i = 0; i < 5; i++) expect(e.onOffender(offender('198.18.0.1'), now)).toBe(false);
    expect(e.stats.blocksByMode.off).toBe(1);
    expect(e.blockedCount()).toBe(0);
    now = 60_001;
    e.onOffender(offender('198.18.0.1'), now);
    expect(e.stats.blocksByMode.off).toBe(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(sink.batches).toHaveLength(0);
  });

  it('loads kernel members with their remaining time under the prefix key', async () => {
    const sink = new FakeSink('ipset');
    sink.members = [{ prefix: '198.18.0.9', family: 4, timeoutSec: 30 }, { prefix: 'fd00:a3b1::', family: 6, timeoutSec: 0 }];
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    expect(await e.loadKernelMembers()).toBe(2);
    expect(e.blocks.isBlocked('198.18.0.9', 29_999)).toBe(true);
    expect(e.blocks.isBlocked('198.18.0.9', 30_000)).toBe(false);
    expect(e.blocks.isBlocked('fd00:a3b1:0:0:0:0:0:0/64', 59_999)).toBe(true);
  });

  it('replays after an outage with the time each block has left, skipping the expired, and lists where each block is', async () => {
    const sink = new FakeSink('ipset');
    sink.failing = true;
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    e.onOffender(offender('198.18.0.1'), now); // expires at 60 s
    now = 30_000;
    e.onOffender(offender('198.18.0.2'), now); // expires at 90 s
    await vi.advanceTimersByTimeAsync(100 + 500 + 2000 + 5000 + 5000);
    expect(e.stats.degraded).toBe(true);
    expect(e.list().map((b) => b.where)).toEqual(['userspace', 'userspace']);
    now = 70_000; // the first block ran out during the outage
    sink.failing = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(sink.batches).toEqual([[{ prefix: '198.18.0.2', family: 4, timeoutSec: 20 }]]);
    expect(e.list()).toEqual([{ prefix: '198.18.0.2', expiresInSec: 20, expiresInMs: 20_000, where: 'ipset' }]);
  });

  it('keeps the degraded queue to one entry per prefix and within block.max_elements', async () => {
    const sink = new FakeSink('ipset');
    sink.failing = true;
    const e = new Enforcer(sink, 50, () => settings, log, () => now);
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 20; i++) e.blockByHand(`198.18.9.${i}`); // blocked again and again
      await vi.advanceTimersByTimeAsync(6000);
    }
    expect(e.pending).toBe(20);
    for (let i = 0; i < 500; i++) e.onOffender(offender(`198.18.${i >> 8}.${i & 255}`), now);
    await vi.advanceTimersByTimeAsync(6000);
    expect(e.pending).toBe(50);
    expect(e.blockedCount()).toBe(50);
    expect(e.stats.refused.full).toBe(500 - 30);
  }, 10_000);

  it('never has two flushes in flight, however slow the kernel', async () => {
    const sink = new FakeSink('ipset');
    sink.latencyMs = 300;
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    for (let i = 0; i < 40; i++) {
      e.onOffender(offender(`198.18.1.${i}`), now);
      await vi.advanceTimersByTimeAsync(25);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.maxInFlight).toBe(1);
    expect(sink.batches.flat()).toHaveLength(40);
    expect(e.list().every((b) => b.where === 'ipset')).toBe(true);
  });

  it('lists entries the full kernel set refused as userspace, and counts them', async () => {
    const sink = new FakeSink('ipset');
    sink.capacity = 2;
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    for (const a of ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4']) e.onOffender(offender(a), now);
    await vi.advanceTimersByTimeAsync(25);
    expect(e.list().map((b) => `${b.prefix} ${b.where}`)).toEqual(['198.18.0.1 ipset', '198.18.0.2 ipset', '198.18.0.3 userspace', '198.18.0.4 userspace']);
    expect(e.stats.kernelRejected.full).toBe(2);
  });

  it('with max_elements 2 blocks the first two offenders, as the kernel set does, and counts the rest', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 2, () => settings, log, () => now);
    for (const a of ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4']) expect(e.onOffender(offender(a), now)).toBe(true);
    await vi.advanceTimersByTimeAsync(25);
    expect(e.list().map((b) => b.prefix)).toEqual(['198.18.0.1', '198.18.0.2']);
    expect(sink.batches.flat().map((b) => b.prefix)).toEqual(['198.18.0.1', '198.18.0.2']);
    expect(e.stats.refused.full).toBe(2);
    expect(e.blockedCount()).toBe(2);
    expect(() => e.blockByHand('198.18.0.5')).toThrow(/max_elements/);
  });

  it('validates before queueing: bad entries refused by hand, counted from the packet path, loopback kept in userspace', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    expect(() => e.blockByHand('0.0.0.0')).toThrow(/0\.0\.0\.0/);
    expect(() => e.blockByHand('::')).toThrow(/unspecified/);
    expect(() => e.blockByHand('fe80::1%eth0')).toThrow(/zone id/);
    expect(e.blockByHand('::ffff:198.18.0.9')).toBe('198.18.0.9');
    expect(e.blockByHand('::ffff:127.0.0.9')).toBe('127.0.0.9');
    expect(e.blockByHand('::1')).toBe('0:0:0:0:0:0:0:0/64');
    expect(e.onOffender({ address: '0.0.0.0', prefix: '0.0.0.0', family: 4, charged: 1 }, now)).toBe(true);
    expect(e.stats.refused.invalid).toBe(1);
    await vi.advanceTimersByTimeAsync(25);
    expect(sink.batches).toEqual([[{ prefix: '198.18.0.9', family: 4, timeoutSec: 60 }]]);
    expect(e.list().map((b) => `${b.prefix} ${b.where}`).sort()).toEqual(['0:0:0:0:0:0:0:0/64 userspace', '127.0.0.9 userspace', '198.18.0.9 ipset']);
  });

  it('the ladder never blocks a prefix holding ::1: a spoofer sends from ::5 (the kernel takes it from the wire), and ::1 would be dropped', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    // the spoofed source's offender, and ::1's own reply tripping the same /64 on the packet path
    expect(e.onOffender({ address: '::5', prefix: '0:0:0:0:0:0:0:0/64', family: 6, charged: 9000 }, now)).toBe(true);
    expect(e.onOffender({ address: '::198.18.0.5', prefix: '0:0:0:0:0:0:0:0/64', family: 6, charged: 9000 }, now)).toBe(true);
    expect(e.onOffender({ address: '::1', prefix: '0:0:0:0:0:0:0:0/64', family: 6, charged: 9000 }, now)).toBe(true);
    expect(e.list()).toEqual([]);
    expect(e.isBlocked('0:0:0:0:0:0:0:0/64')).toBe(false);
    expect(e.stats.refused.invalid).toBe(3);
    // a /64 next to it, and the operator's own block of ::1, are made as before
    expect(e.onOffender({ address: '0:0:0:1::5', prefix: '0:0:0:1:0:0:0:0/64', family: 6, charged: 9000 }, now)).toBe(true);
    expect(e.blockByHand('::1')).toBe('0:0:0:0:0:0:0:0/64');
    expect(e.list().map((b) => b.prefix).sort()).toEqual(['0:0:0:0:0:0:0:0/64', '0:0:0:1:0:0:0:0/64']);
  });

  it('never blocks a prefix that contains an allowlisted address, but still drops the tripping reply', async () => {
    const s24 = compilePolicy(configSchema.parse({ block: { timeout: 60, allowlist: ['198.18.0.12/32', 'fd00:a3b1::12/128'] }, policy: { large_response: { prefix_v4: 24 } } }));
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => s24, log, () => now);
    expect(e.onOffender({ address: '198.18.0.11', prefix: '198.18.0.0/24', family: 4, charged: 1 }, now)).toBe(true);
    expect(e.onOffender({ address: 'fd00:a3b1::11', prefix: 'fd00:a3b1:0:0:0:0:0:0/64', family: 6, charged: 1 }, now)).toBe(true);
    expect(e.stats.refused.allowlist).toBe(2);
    expect(e.blockedCount()).toBe(0);
    expect(() => e.blockByHand('198.18.0.200')).toThrow(/allowlist/);
    await vi.advanceTimersByTimeAsync(25);
    expect(sink.batches).toHaveLength(0);
    e.onOffender({ address: '198.18.1.11', prefix: '198.18.1.0/24', family: 4, charged: 1 }, now);
    expect(e.blockedCount()).toBe(1);
  });

  it('sends an aggregate block to the kernel as a network, with the same batch and expiry as a prefix', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    const agg = (address: string, prefix: string, family: 4 | 6 = 4): Offender => ({ address, prefix, family, charged: 1, level: 'aggregate' });
    expect(e.onOffender(agg('198.18.2.7', '198.18.2.0/24'), now)).toBe(true);
    expect(e.onOffender(agg('fd00:a3b2::7', 'fd00:a3b2:0:0:0:0:0:0/48', 6), now)).toBe(true);
    e.onOffender(offender('198.18.0.1'), now);
    // loopback: userspace only; the all-zero IPv6 network holds ::1, which a spoofer's ::2 must not get dropped: refused
    expect(e.onOffender(agg('127.0.0.9', '127.0.0.0/24'), now)).toBe(true);
    expect(e.onOffender(agg('::2', '0:0:0:0:0:0:0:0/48', 6), now)).toBe(true);
    expect(e.stats.refused.invalid).toBe(1);
    await vi.advanceTimersByTimeAsync(25);
    expect(sink.batches).toEqual([[
      { prefix: '198.18.2.0/24', family: 4, timeoutSec: 60, network: true },
      { prefix: 'fd00:a3b2:0:0:0:0:0:0/48', family: 6, timeoutSec: 60, network: true },
      { prefix: '198.18.0.1', family: 4, timeoutSec: 60 },
    ]]);
    expect(e.list().map((b) => `${b.prefix} ${b.where}`)).toEqual([
      '198.18.2.0/24 ipset', 'fd00:a3b2:0:0:0:0:0:0/48 ipset', '198.18.0.1 ipset', '127.0.0.0/24 userspace',
    ]);
    expect(e.blockedCount()).toBe(4);
  });

  it('keeps a network in the degraded queue and replays it as a network with the time it has left', async () => {
    const sink = new FakeSink('nftables');
    sink.failing = true;
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    e.onOffender({ address: '198.18.2.7', prefix: '198.18.2.0/24', family: 4, charged: 1, level: 'aggregate' }, now);
    await vi.advanceTimersByTimeAsync(100 + 500 + 2000 + 5000);
    expect(e.stats.degraded).toBe(true);
    now = 45_000;
    sink.failing = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(sink.batches).toEqual([[{ prefix: '198.18.2.0/24', family: 4, timeoutSec: 15, network: true }]]);
  });

  it('loads network members under the key the ladder blocks them with, and removes one that covers an allowlisted address', async () => {
    const sAllow = compilePolicy(configSchema.parse({ block: { timeout: 60, allowlist: ['198.18.3.12/32'] } }));
    const sink = new FakeSink('ipset');
    sink.members = [
      { prefix: '198.18.2.0/24', family: 4, timeoutSec: 30, network: true },
      { prefix: 'fd00:a3b2::/48', family: 6, timeoutSec: 40, network: true },
      { prefix: '198.18.3.0/24', family: 4, timeoutSec: 30, network: true },
    ];
    const e = new Enforcer(sink, 1000, () => sAllow, log, () => now);
    expect(await e.loadKernelMembers()).toBe(2);
    expect(e.list().map((b) => `${b.prefix} ${b.where} ${b.expiresInSec}`)).toEqual(['198.18.2.0/24 ipset 30', 'fd00:a3b2:0:0:0:0:0:0/48 ipset 40']);
    expect(e.blockedCount()).toBe(2);
    expect(sink.removed).toEqual([{ prefix: '198.18.3.0/24', family: 4, network: true }]);
  });

  it('unblocks a network by hand under the key the ladder blocked it with, in the network sets', async () => {
    const sink = new FakeSink('ipset');
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    e.onOffender({ address: '198.18.2.7', prefix: '198.18.2.0/24', family: 4, charged: 1, level: 'aggregate' }, now);
    e.onOffender({ address: 'fd00:a3b2::7', prefix: 'fd00:a3b2:0:0:0:0:0:0/48', family: 6, charged: 1, level: 'aggregate' }, now);
    expect(e.blockedCount()).toBe(2);
    expect(await e.unblockNetwork('198.18.2.0', 4, 24)).toBe('198.18.2.0/24');
    expect(await e.unblockNetwork('fd00:a3b2::', 6, 48)).toBe('fd00:a3b2:0:0:0:0:0:0/48');
    expect(e.blockedCount()).toBe(0);
    expect(sink.removed).toEqual([
      { prefix: '198.18.2.0/24', family: 4, network: true },
      { prefix: 'fd00:a3b2:0:0:0:0:0:0/48', family: 6, network: true },
    ]);
  });

  it('unblocking an address inside a blocked network lifts the network too and names it', async () => {
    const sink = new FakeSink('ipset');
    sink.members = [{ prefix: '198.18.2.0/24', family: 4, timeoutSec: 30, network: true }];
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    await e.loadKernelMembers();
    e.onOffender(offender('198.18.2.9'), now);
    expect(await e.unblockAddress('198.18.2.9')).toEqual({ prefix: '198.18.2.9', networks: ['198.18.2.0/24'] });
    expect(e.blockedCount()).toBe(0);
    expect(sink.removed).toContainEqual({ prefix: '198.18.2.0/24', family: 4, network: true });
    // an address outside any blocked network: only its prefix
    expect(await e.unblockAddress('198.18.3.9')).toEqual({ prefix: '198.18.3.9', networks: [] });
  });

  it('names the network an address unblock lifts even when a fleet verdict lifts it while the kernel works', async () => {
    const sink = new FakeSink('ipset');
    sink.members = [{ prefix: '198.18.2.0/24', family: 4, timeoutSec: 30, network: true }];
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    await e.loadKernelMembers();
    e.onOffender(offender('198.18.2.9'), now);
    // the kernel's remove of the address is slow; meanwhile a peer's verdict lifts the network
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const remove = sink.remove.bind(sink);
    sink.remove = async (entry) => {
      if (entry.network !== true) await slow;
      return remove(entry);
    };
    const answer = e.unblockAddress('198.18.2.9');
    await vi.advanceTimersByTimeAsync(0);
    const lifted = e.unblockNetwork('198.18.2.0', 4, 24); // out of the table at once; its kernel remove waits its turn
    release();
    expect(await answer).toEqual({ prefix: '198.18.2.9', networks: ['198.18.2.0/24'] });
    await lifted;
    expect(e.blockedCount()).toBe(0);
  });

  it('lifts the prefix only for a fleet peer\'s address verdict: the networks come as verdicts of their own', async () => {
    const sink = new FakeSink('ipset');
    sink.members = [{ prefix: '198.18.2.0/24', family: 4, timeoutSec: 30, network: true }];
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    await e.loadKernelMembers();
    e.onOffender(offender('198.18.2.9'), now);
    const changes: string[] = [];
    e.onChange = (c) => changes.push(`${c.kind} ${c.prefix}`);
    expect(await e.unblockAddress('198.18.2.9', { networks: false })).toEqual({ prefix: '198.18.2.9', networks: [] });
    expect(changes).toEqual(['unblock 198.18.2.9']);
    expect(e.list().map((b) => b.prefix)).toEqual(['198.18.2.0/24']);
  });

  it('lifts every network block, and only those, when the aggregates are turned off', async () => {
    const sink = new FakeSink('ipset');
    sink.members = [
      { prefix: '198.18.2.0/24', family: 4, timeoutSec: 30, network: true },
      { prefix: 'fd00:a3b2::/48', family: 6, timeoutSec: 40, network: true },
    ];
    const e = new Enforcer(sink, 1000, () => settings, log, () => now);
    await e.loadKernelMembers();
    e.onOffender(offender('198.18.2.9'), now);
    e.onOffender(offender('fd00:a3b1::9', 6), now);
    expect((await e.liftNetworks()).sort()).toEqual(['198.18.2.0/24', 'fd00:a3b2:0:0:0:0:0:0/48']);
    expect(e.list().map((b) => b.prefix).sort()).toEqual(['198.18.2.9', 'fd00:a3b1::9']);
  });
});
