// The one log budget: N lines per window, the rest counted onto the next line.
import { describe, expect, it } from 'vitest';
import { LogBudget } from '../../../src/log/rate-limited.js';

describe('LogBudget', () => {
  it('lets N lines through per window and hands the held-back count to the next line', () => {
    let now = 5_000;
    const b = new LogBudget(2, 60_000, () => now);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([0, 0, null, null]);
    expect(b.pending).toBe(2);
    now += 59_999;
    expect(b.take()).toBeNull();
    now += 1;
    expect(b.take()).toBe(3);
    expect(b.pending).toBe(0);
  });
});
