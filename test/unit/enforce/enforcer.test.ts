// The Enforcer with a fake sink and fake timers: batching, retries, degrade
// and recovery, mode off, and the userspace table holding every block.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { Enforcer } from '../../../src/enforce/enforcer.js';
import type { BlockMode, BlockSink, KernelEntry, SinkResult } from '../../../src/enforce/sink.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import type { Offender } from '../../../src/pipeline/verdict.js';

class FakeSink implements BlockSink {
  batches: KernelEntry[][] = [];
  failing = false;
  members: KernelEntry[] = [];
  constructor(readonly mode: BlockMode) {}
  async start(): Promise<SinkResult> {
    return { ok: true };
  }
  async add(entries: readonly KernelEntry[]): Promise<SinkResult> {
    if (this.failing) return { ok: false, error: 'ipset: Kernel error received: Operation not permitted' };
    this.batches.push([...entries]);
    return { ok: true };
  }
  async remove(): Promise<SinkResult> {
    return { ok: true };
  }
  async list(): Promise<KernelEntry[] | null> {
    return this.members;
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
});
