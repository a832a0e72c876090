import { describe, expect, it } from 'vitest';
import { InFlightTable } from '../../../src/backend/inflight.js';

describe('InFlightTable', () => {
  it('never hands out an ID that is still outstanding', () => {
    const t = new InFlightTable<number>(65535);
    const seen = new Set<number>();
    for (let i = 0; i < 65535; i++) {
      const id = t.add(i, 1000);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
    }
    expect(t.add(-1, 1000)).toBe(-1); // full: a counted overload, not a collision
    expect(t.size).toBe(65535);
  });

  it('is bounded by its capacity and frees IDs on take', () => {
    const t = new InFlightTable<string>(2);
    const a = t.add('a', 10);
    const b = t.add('b', 10);
    expect(t.add('c', 10)).toBe(-1);
    expect(t.take(a)).toBe('a');
    expect(t.take(a)).toBeUndefined();
    expect(t.add('c', 10)).not.toBe(b);
    expect(t.size).toBe(2);
  });

  it('expires entries at their deadline and not before', () => {
    const t = new InFlightTable<string>(10);
    t.add('early', 100);
    const late = t.add('late', 200);
    const expired: string[] = [];
    t.sweep(99, (e) => expired.push(e));
    expect(expired).toEqual([]);
    t.sweep(100, (e) => expired.push(e));
    expect(expired).toEqual(['early']);
    expect(t.peek(late)).toBe('late');
    expect(t.size).toBe(1);
  });

  it('keeps working across many cycles of the ID space', () => {
    const t = new InFlightTable<number>(100);
    for (let i = 0; i < 300_000; i++) {
      const id = t.add(i, 0);
      expect(t.take(id)).toBe(i);
    }
    expect(t.size).toBe(0);
  });
});
