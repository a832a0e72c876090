// The kernel queue alone, with a fake sink and a fake clock that fires its
// timers: one batch per burst, retry delays, degrade after four failures,
// recovery, the remaining time on replay, and the bound.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BATCH_DELAY_MS, KernelQueue, RETRY_DELAYS_MS } from '../../../src/enforce/kernel-queue.js';
import type { AddResult, KernelEntry } from '../../../src/enforce/sink.js';
import { FakeTimers } from '../../helpers/fake-timers.js';

class FakeSink {
  readonly mode = 'ipset' as const;
  batches: KernelEntry[][] = [];
  failing = false;
  async add(entries: readonly KernelEntry[]): Promise<AddResult> {
    if (this.failing) return { ok: false, error: 'ipset: Kernel error received: Operation not permitted', rejected: [], pending: entries };
    this.batches.push([...entries]);
    return { ok: true, rejected: [], pending: [] };
  }
}

function setup(maxElements = 100) {
  const clock = new FakeTimers(1_000_000);
  const sink = new FakeSink();
  const blocked = new Set<string>();
  const failures: (string | undefined)[] = [];
  const settled: KernelEntry[][] = [];
  let degradedChanges = 0;
  let tail: Promise<unknown> = Promise.resolve();
  const q = new KernelQueue({
    sink,
    maxElements,
    clock: () => clock.now,
    log: pino({ level: 'silent' }),
    stillBlocked: (prefix) => blocked.has(prefix),
    serial: <T>(fn: () => Promise<T>) => {
      const run = tail.then(fn, fn);
      tail = run.catch(() => undefined);
      return run;
    },
    recordAdded: (batch) => settled.push([...batch]),
    kernelFailure: (error) => failures.push(error),
    onDegradedChange: () => degradedChanges++,
    timers: clock,
  });
  const block = (prefix: string, ttlMs = 60_000) => {
    blocked.add(prefix);
    q.add(prefix, 4, clock.now + ttlMs, false);
  };
  return { clock, sink, blocked, failures, settled, q, block, degradedChanges: () => degradedChanges };
}

describe('KernelQueue', () => {
  it('sends a burst of blocks as one batch after the batch delay, and empties', async () => {
    const t = setup();
    for (let i = 1; i <= 5; i++) t.block(`198.18.0.${i}`);
    expect(t.q.size).toBe(5);
    await t.clock.advanceSettled(BATCH_DELAY_MS - 1);
    expect(t.sink.batches).toHaveLength(0);
    await t.clock.advanceSettled(1);
    expect(t.sink.batches).toHaveLength(1);
    expect(t.sink.batches[0]?.map((e) => e.prefix)).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5']);
    expect(t.sink.batches[0]?.[0]?.timeoutSec).toBe(60);
    expect(t.q.size).toBe(0);
    expect(t.clock.nextIn()).toBeNull();
  });

  it('a re-block keeps one entry with the newer expiry', async () => {
    const t = setup();
    t.block('198.18.0.1', 10_000);
    t.block('198.18.0.1', 30_000);
    expect(t.q.size).toBe(1);
    await t.clock.advanceSettled(BATCH_DELAY_MS);
    expect(t.sink.batches).toEqual([[{ prefix: '198.18.0.1', family: 4, timeoutSec: 30 }]]);
  });

  it('retries at 100 ms, 500 ms, 2 s, then every 5 s; degrades at the fourth failure; recovers with the time left', async () => {
    const t = setup();
    t.sink.failing = true;
    const blockedAt = t.clock.now;
    t.block('198.18.0.1', 60_000);
    await t.clock.advanceSettled(BATCH_DELAY_MS);
    expect(t.failures).toHaveLength(1);
    expect(t.q.size).toBe(1);
    const seen: number[] = [];
    for (let i = 0; i < RETRY_DELAYS_MS.length; i++) {
      const next = t.clock.nextIn();
      expect(next).not.toBeNull();
      seen.push(next as number);
      // one ms short of the retry: nothing is sent
      await t.clock.advanceSettled((next as number) - 1);
      expect(t.failures).toHaveLength(i + 1);
      await t.clock.advanceSettled(1);
      expect(t.failures).toHaveLength(i + 2);
    }
    expect(seen).toEqual([100, 500, 2000, 5000]);
    expect(t.clock.nextIn()).toBe(5000);
    expect(t.q.degraded).toBe('ipset: Kernel error received: Operation not permitted');
    expect(t.q.size).toBe(1);

    // the kernel accepts again: the entry is replayed with what is left, not a fresh timeout
    t.sink.failing = false;
    await t.clock.advanceSettled(5000);
    expect(t.q.degraded).toBeNull();
    expect(t.q.size).toBe(0);
    // 20 + 100 + 500 + 2000 + 5000 + 5000 ms after the block: 47.38 s left, sent as 48
    expect(t.clock.now - blockedAt).toBe(12_620);
    expect(t.sink.batches).toEqual([[{ prefix: '198.18.0.1', family: 4, timeoutSec: 48 }]]);
    // the next block is batched again after the short delay
    t.block('198.18.0.2');
    expect(t.clock.nextIn()).toBe(BATCH_DELAY_MS);
  });

  it('is not degraded after three failures', async () => {
    const t = setup();
    t.sink.failing = true;
    t.block('198.18.0.1');
    await t.clock.advanceSettled(BATCH_DELAY_MS + 100 + 500);
    expect(t.failures).toHaveLength(3);
    expect(t.q.degraded).toBeNull();
    await t.clock.advanceSettled(2000);
    expect(t.failures).toHaveLength(4);
    expect(t.q.degraded).not.toBeNull();
  });

  it('skips entries that expired or were unblocked during an outage', async () => {
    const t = setup();
    t.sink.failing = true;
    t.block('198.18.0.1', 1_000);
    t.block('198.18.0.2', 60_000);
    t.block('198.18.0.3', 60_000);
    await t.clock.advanceSettled(BATCH_DELAY_MS + 100 + 500 + 2000);
    t.blocked.delete('198.18.0.3');
    t.sink.failing = false;
    await t.clock.advanceSettled(5000);
    expect(t.sink.batches.map((b) => b.map((e) => e.prefix))).toEqual([['198.18.0.2']]);
    expect(t.q.size).toBe(0);
  });

  it('holds at most maxElements entries, pruning the expired first', async () => {
    const t = setup(3);
    t.sink.failing = true;
    t.block('198.18.0.1', 500);
    t.block('198.18.0.2');
    t.block('198.18.0.3');
    t.block('198.18.0.4');
    expect(t.q.size).toBe(3);
    expect(t.q.has('198.18.0.4')).toBe(false);
    // time passes before the batch timer fires (a busy event loop): the first entry expired in the queue
    t.clock.now += 1000;
    t.block('198.18.0.5');
    expect(t.q.size).toBe(3);
    expect(t.q.has('198.18.0.1')).toBe(false);
    expect(t.q.has('198.18.0.5')).toBe(true);
  });

  it('forgets an entry deleted before its batch', async () => {
    const t = setup();
    t.block('198.18.0.1');
    t.block('198.18.0.2');
    t.q.delete('198.18.0.1');
    await t.clock.advanceSettled(BATCH_DELAY_MS);
    expect(t.sink.batches.map((b) => b.map((e) => e.prefix))).toEqual([['198.18.0.2']]);
  });

  it('close() cancels the timer and flushes what is queued once', async () => {
    const t = setup();
    t.block('198.18.0.1');
    await t.q.close();
    expect(t.sink.batches).toHaveLength(1);
    expect(t.clock.nextIn()).toBeNull();
    t.block('198.18.0.2');
    expect(t.clock.nextIn()).toBeNull(); // closed: nothing scheduled
  });

  it('a sink that throws is a failed batch, retried', async () => {
    const t = setup();
    t.sink.add = async () => {
      throw new Error('spawn ipset ENOENT');
    };
    t.block('198.18.0.1');
    await t.clock.advanceSettled(BATCH_DELAY_MS);
    expect(t.failures).toEqual(['spawn ipset ENOENT']);
    expect(t.q.size).toBe(1);
    expect(t.clock.nextIn()).toBe(100);
  });
});
