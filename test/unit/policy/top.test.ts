import { describe, expect, it } from 'vitest';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { mergeTop } from '../../../src/operator/view.js';
import { compilePolicy, type PolicySettings } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';

// a generous budget, so every reply is charged and counted
const settings = compilePolicy(configSchema.parse({ policy: { large_response: { rate: '100mb/sec', burst: 100000 } } }));

/** one reply charged to a prefix's bucket, as the large-response stage does (policy/large-response.ts) */
const charge = (t: BudgetTable, prefix: string, bytes: number, s: PolicySettings, now: number): boolean =>
  t.chargeAt('prefix', prefix, bytes, s.prefixBudget, now, s);

describe('top talkers', () => {
  it('stays a short list over a million distinct prefixes, with the heavy one first', () => {
    const t = new BudgetTable(100_000);
    let now = 0;
    for (let i = 0; i < 1_000_000; i++) {
      charge(t, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 800, settings, (now += 0.02));
      if (i % 1000 === 0) charge(t, '198.18.0.99', 1200, settings, now);
    }
    const top = t.top(20, now);
    expect(top).toHaveLength(20);
    expect(top[0]).toEqual({ prefix: '198.18.0.99', bytes: expect.any(Number), rung: 1 });
    expect(top[0]!.bytes).toBeGreaterThan(1200 * 900);
    for (let i = 1; i < top.length; i++) expect(top[i]!.bytes).toBeLessThanOrEqual(top[i - 1]!.bytes);
  });

  it('counts the last minute: the previous minute fades out as the current one runs', () => {
    const t = new BudgetTable(10);
    charge(t, 'a', 1000, settings, 59_000); // minute 0
    expect(t.top(5, 59_000)).toEqual([{ prefix: 'a', bytes: 1000, rung: 1 }]);
    expect(t.top(5, 90_000)).toEqual([{ prefix: 'a', bytes: 500, rung: 1 }]); // half of minute 1 gone
    charge(t, 'a', 300, settings, 90_000);
    expect(t.top(5, 90_000)).toEqual([{ prefix: 'a', bytes: 800, rung: 1 }]);
    expect(t.top(5, 121_000)).toEqual([{ prefix: 'a', bytes: 295, rung: 1 }]);
    expect(t.top(5, 180_000)).toEqual([]);
  });

  it('merges per-worker lists by prefix, with the highest rung any worker has it on', () => {
    expect(mergeTop([[{ prefix: 'a', bytes: 5 }, { prefix: 'b', bytes: 4, rung: 2 }], [{ prefix: 'b', bytes: 3, rung: 1 }, { prefix: 'c', bytes: 1 }]], 2)).toEqual([
      { prefix: 'b', bytes: 7, rung: 2 },
      { prefix: 'a', bytes: 5 },
    ]);
  });
});
