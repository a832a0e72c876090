import { describe, expect, it } from 'vitest';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { compilePolicy, type PolicySettings } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';

const settings = compilePolicy(configSchema.parse({})); // 50kb/min, burst 10, truncate_above 1232
const perMs = (50 * 1024) / 60_000;

/** one reply charged to a prefix's bucket, as the large-response stage does (policy/large-response.ts) */
const charge = (t: BudgetTable, prefix: string, bytes: number, s: PolicySettings, now: number): boolean =>
  t.chargeAt('prefix', prefix, bytes, s.prefixBudget, now, s);

describe('token bucket (hashlimit arithmetic)', () => {
  it('lets a fresh prefix have its burst of full-size replies, and trips on the next', () => {
    const t = new BudgetTable(10);
    for (let i = 1; i <= 10; i++) expect(charge(t, '198.18.0.1', 1232, settings, 0), `reply ${i}`).toBe(true);
    expect(charge(t, '198.18.0.1', 1232, settings, 0)).toBe(false);
  });

  it('refills at the rate: one 1232-byte reply every 1232/rate ms', () => {
    const t = new BudgetTable(10);
    expect(settings.prefixBudget).toEqual({ capacity: 12320, perMs, bytes: true });
    for (let i = 0; i < 10; i++) charge(t, 'p', 1232, settings, 0);
    const interval = 1232 / perMs;
    expect(charge(t, 'p', 1232, settings, interval - 1)).toBe(false);
    expect(charge(t, 'p', 1232, settings, interval + 1)).toBe(true);
  });

  it('never trips a client exactly at the refill rate, however long', () => {
    const t = new BudgetTable(10);
    const interval = 1232 / perMs;
    for (let i = 0; i < 10_000; i++) expect(charge(t, 'p', 1232, settings, i * interval)).toBe(true);
  });

  it('does not store more than the capacity after a long quiet time', () => {
    const t = new BudgetTable(10);
    charge(t, 'p', 1, settings, 10 ** 9);
    // 12319 bytes left, not more
    expect(charge(t, 'p', 12319, settings, 10 ** 9)).toBe(true);
    expect(charge(t, 'p', 1, settings, 10 ** 9)).toBe(false);
  });

  it('counts replies, not bytes, for a packet rate', () => {
    const s = compilePolicy(configSchema.parse({ policy: { large_response: { rate: '1/sec', burst: 3 } } }));
    const t = new BudgetTable(10);
    for (let i = 0; i < 3; i++) expect(charge(t, 'p', 60_000, s, 0)).toBe(true);
    expect(charge(t, 'p', 700, s, 0)).toBe(false);
    expect(charge(t, 'p', 700, s, 1000)).toBe(true);
  });

  it('keeps at most max_tracked prefixes, forgetting the least recently used', () => {
    const t = new BudgetTable(1000);
    for (let i = 0; i < 100_000; i++) charge(t, `p${i}`, 800, settings, i);
    expect(t.size).toBe(1000);
  });
});
