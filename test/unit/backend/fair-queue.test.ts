// The queue of TCP queries waiting for an upstream slot: each prefix in turn,
// a prefix's own queries in order.
import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../../src/backend/fair-queue.js';

/** takes the heads in turn until empty, one at a time as slots would free */
function drainOrder(q: FairQueue<string>): string[] {
  const out: string[] = [];
  while (q.size > 0) {
    const [key] = q.heads()[0]!;
    out.push(q.take(key)!);
  }
  return out;
}

describe('FairQueue', () => {
  it('serves prefixes in turn: a backlog of one does not delay another by more than one turn', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 5; i++) q.push('slow', `s${i}`);
    q.push('fast', 'f0');
    q.push('fast', 'f1');
    expect(q.size).toBe(7);
    expect(q.keys).toBe(2);
    expect(drainOrder(q)).toEqual(['s0', 'f0', 's1', 'f1', 's2', 's3', 's4']);
  });

  it('removes an expired or cancelled item from anywhere, in O(1)', () => {
    const q = new FairQueue<string>();
    const a0 = q.push('a', 'a0');
    q.push('a', 'a1');
    const a2 = q.push('a', 'a2');
    const b0 = q.push('b', 'b0');
    expect(q.remove(a0)).toBe(true);
    expect(q.remove(a0)).toBe(false);
    expect(q.remove(b0)).toBe(true);
    expect(q.remove(a2)).toBe(true);
    expect(q.keys).toBe(1);
    expect(drainOrder(q)).toEqual(['a1']);
    expect(q.take('a')).toBeUndefined();
  });
});
