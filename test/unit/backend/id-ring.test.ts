// The one allocator of upstream DNS IDs (UDP in-flight table, TCP
// connections): never two outstanding entries on one ID, bounded, a released
// ID last in line, and a release of an ID not held changes nothing.
import { describe, expect, it } from 'vitest';
import { IdRing } from '../../../src/backend/id-ring.js';

/** a seeded generator (mulberry32): the same run every time */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('IdRing', () => {
  it('hands out all 65536 IDs, each once, then -1 until one comes back: that one', () => {
    const ring = new IdRing();
    const seen = new Set<number>();
    for (let i = 0; i < 65536; i++) seen.add(ring.take());
    expect(seen.size).toBe(65536);
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(65535);
    expect(ring.take()).toBe(-1);
    expect(ring.size).toBe(65536);
    expect(ring.release(4242)).toBe(true);
    expect(ring.take()).toBe(4242);
    expect(ring.take()).toBe(-1);
  });

  it('holds at most its capacity, and frees room on release', () => {
    const ring = new IdRing(3);
    const ids = [ring.take(), ring.take(), ring.take()];
    expect(new Set(ids).size).toBe(3);
    expect(ring.take()).toBe(-1);
    ring.release(ids[1]!);
    expect(ring.size).toBe(2);
    const next = ring.take();
    expect(next).toBeGreaterThanOrEqual(0);
    expect(ids).not.toContain(next);
    expect(() => new IdRing(0)).toThrow(RangeError);
    expect(() => new IdRing(65537)).toThrow(RangeError);
  });

  it('gives a released ID back only after every other free ID, in the order they were released', () => {
    const ring = new IdRing();
    expect([ring.take(), ring.take(), ring.take()]).toEqual([0, 1, 2]);
    ring.release(1);
    ring.release(0);
    // the never-used IDs first, then 1 and 0, as released
    const rest = Array.from({ length: 65536 }, () => ring.take());
    expect(rest.slice(0, 65533)).toEqual(Array.from({ length: 65533 }, (_, i) => i + 3));
    expect(rest.slice(65533)).toEqual([1, 0, -1]);
  });

  it('never hands out an ID still outstanding, over many cycles of the ID space in random order', () => {
    const random = seeded(22);
    const ring = new IdRing(1000, random);
    const out = new Set<number>();
    const order: number[] = [];
    // counted, then asserted once: an expect per step would take most of the test's time
    let clashes = 0;
    let refused = 0;
    let sizeOff = 0;
    for (let step = 0; step < 400_000; step++) {
      if (out.size > 0 && (random() < 0.5 || ring.size === 1000)) {
        const at = Math.floor(random() * order.length);
        const id = order[at]!;
        order[at] = order[order.length - 1]!;
        order.pop();
        out.delete(id);
        if (!ring.release(id)) refused++;
      } else {
        const id = ring.take();
        if (id < 0 || out.has(id)) clashes++;
        out.add(id);
        order.push(id);
      }
      if (ring.size !== out.size) sizeOff++;
    }
    expect({ clashes, refused, sizeOff }).toEqual({ clashes: 0, refused: 0, sizeOff: 0 });
  });

  it('shuffles the order of first use when given a random source', () => {
    const ring = new IdRing(65536, seeded(1));
    const first = Array.from({ length: 65536 }, () => ring.take());
    expect(new Set(first).size).toBe(65536);
    expect(first.slice(0, 8)).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ring.take()).toBe(-1);
    // then first out first, as in the counted order
    const back = [first[9]!, first[3]!, first[60_000]!];
    for (const id of back) ring.release(id);
    expect([ring.take(), ring.take(), ring.take(), ring.take()]).toEqual([...back, -1]);
  });

  it('ignores a release of an ID it does not hold: never taken, released twice, or not a 16-bit ID', () => {
    const ring = new IdRing(4);
    const a = ring.take();
    for (const bad of [a + 1, 65535, -1, 65536, 1.5, NaN, Infinity]) expect(ring.release(bad)).toBe(false);
    expect(ring.size).toBe(1);
    expect(ring.release(a)).toBe(true);
    expect(ring.release(a)).toBe(false);
    expect(ring.size).toBe(0);
    // none of it put an ID in line twice: the whole space still comes out once each
    const big = new IdRing();
    big.take();
    big.release(0);
    big.release(0);
    big.release(7);
    const seen = new Set<number>();
    for (let id = big.take(); id >= 0; id = big.take()) seen.add(id);
    expect(seen.size).toBe(65536);
  });
});
