// The userspace block table: bounded like the kernel set (a full table refuses,
// never evicts), and a count that does not walk the table.
import { describe, expect, it } from 'vitest';
import { BlockTable } from '../../../src/policy/block-table.js';

describe('BlockTable', () => {
  it('refuses a new block when full, keeping the first ones as the kernel set does', () => {
    const t = new BlockTable(2, () => 0);
    expect(t.add('a', 100, 0)).toBe(true);
    expect(t.add('b', 100, 0)).toBe(true);
    expect(t.add('c', 100, 0)).toBe(false);
    expect(t.add('d', 100, 0)).toBe(false);
    expect(t.list(0).map((e) => e.prefix)).toEqual(['a', 'b']);
    expect(t.add('a', 200, 0)).toBe(true); // a re-block of a member is not a new member
    expect(t.expiresAt('a')).toBe(200);
  });

  it('makes room from expired entries when full', () => {
    const t = new BlockTable(2, () => 0);
    t.add('a', 10, 0);
    t.add('b', 100, 0);
    expect(t.add('c', 100, 50)).toBe(true);
    expect(t.list(50).map((e) => e.prefix)).toEqual(['b', 'c']);
  });

  it('counts live entries, reaping the expired ones by expiry without a walk', () => {
    const t = new BlockTable(100_000, () => 0);
    for (let i = 0; i < 1000; i++) t.add(`p${i}`, 1000 + i, 0);
    t.add('p0', 5000, 0); // re-blocked: outlives its first expiry
    t.remove('p1');
    expect(t.count(0)).toBe(999);
    expect(t.count(1500)).toBe(500); // p501..p999 and p0
    expect(t.isBlocked('p0', 1500)).toBe(true);
    expect(t.count(10_000)).toBe(0);
    expect(t.isEmpty).toBe(true);
  });

  it('keeps its heap of expiries bounded under re-blocks of the same prefixes', () => {
    const t = new BlockTable(10, () => 0);
    for (let i = 0; i < 100_000; i++) t.add(`p${i % 10}`, 1_000_000 + i, 0);
    expect((t as unknown as { heap: unknown[] }).heap.length).toBeLessThanOrEqual(2 * 10 + 65);
    expect(t.count(0)).toBe(10);
  });

  it('records which entries the kernel holds', () => {
    const t = new BlockTable(10, () => 0);
    t.add('a', 100, 0);
    t.add('b', 100, 0);
    t.markKernel('a', true);
    expect(t.list(0)).toEqual([{ prefix: 'a', expiresAt: 100, inKernel: true, place: null }, { prefix: 'b', expiresAt: 100, inKernel: false, place: null }]);
  });

  it('counts the entries marked as in the kernel, and forgets them when they expire or are removed', () => {
    const t = new BlockTable(10, () => 0);
    t.add('a', 100, 0);
    t.add('b', 200, 0);
    t.add('c', 300, 0);
    t.markKernel('a', true);
    t.markKernel('b', true);
    t.markKernel('b', true);
    t.place('b', { family: 4, network: false });
    expect(t.kernelCount(0)).toBe(2);
    expect(t.list(0).find((e) => e.prefix === 'b')?.place).toEqual({ family: 4, network: false });
    expect(t.kernelCount(100)).toBe(1); // a expired
    t.remove('b');
    expect(t.kernelCount(100)).toBe(0);
    t.markKernel('c', true);
    expect(t.isBlocked('c', 300)).toBe(false); // expired on sight
    expect(t.kernelCount(300)).toBe(0);
  });

  it('lists a page: offset and limit, expired entries never counted, only offset + limit walked', () => {
    const t = new BlockTable(1000);
    for (let i = 0; i < 10; i++) t.add(`p${i}`, i < 3 ? 10 : 100);
    // at 50, p0..p2 have expired: the live ones are p3..p9
    expect(t.list(50, 0, 3).map((e) => e.prefix)).toEqual(['p3', 'p4', 'p5']);
    expect(t.list(50, 3, 3).map((e) => e.prefix)).toEqual(['p6', 'p7', 'p8']);
    expect(t.list(50, 6, 3).map((e) => e.prefix)).toEqual(['p9']);
    expect(t.list(50, 7, 3)).toEqual([]);
    expect(t.list(50, 0, 0)).toEqual([]);
    // a page of 1 from a table of 100,000 walks one entry, not the table
    const big = new BlockTable(200_000);
    for (let i = 0; i < 100_000; i++) big.add(`b${i}`, 1000);
    const walked = { n: 0 };
    const entries = (big as unknown as { entries: Map<string, unknown> }).entries;
    const iterate = entries[Symbol.iterator].bind(entries);
    entries[Symbol.iterator] = function* () {
      for (const e of iterate()) {
        walked.n++;
        yield e;
      }
    } as never;
    expect(big.list(0, 10, 1).map((e) => e.prefix)).toEqual(['b10']);
    expect(walked.n).toBe(11);
  });
});
