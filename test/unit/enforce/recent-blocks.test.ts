// The recent-events ring: newest first, bounded.
import { describe, expect, it } from 'vitest';
import { RECENT_BLOCKS, RecentBlocks } from '../../../src/enforce/recent-blocks.js';

const ev = (i: number) => ({ prefix: `198.18.0.${i}`, address: `198.18.0.${i}`, reason: 'no_followup' as const, level: 'prefix' as const, rung: 3 as const, charged: i, at: i, expiresAt: i + 60_000 });

describe('RecentBlocks', () => {
  it('lists newest first', () => {
    const r = new RecentBlocks();
    r.push(ev(1));
    r.push(ev(2));
    expect(r.list().map((e) => e.charged)).toEqual([2, 1]);
  });

  it(`keeps the last ${RECENT_BLOCKS} (the oldest goes)`, () => {
    const r = new RecentBlocks();
    for (let i = 1; i <= RECENT_BLOCKS + 5; i++) r.push(ev(i));
    const list = r.list();
    expect(list).toHaveLength(RECENT_BLOCKS);
    expect(list[0]?.charged).toBe(RECENT_BLOCKS + 5);
    expect(list.at(-1)?.charged).toBe(6);
  });
});
