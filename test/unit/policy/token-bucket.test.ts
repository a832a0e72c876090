import { describe, expect, it } from 'vitest';
import { charge, newBucket } from '../../../src/policy/token-bucket.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';

const settings = compilePolicy(configSchema.parse({})); // 50kb/min, burst 10, truncate_above 1232
const perMs = (50 * 1024) / 60_000;

describe('token bucket (hashlimit arithmetic)', () => {
  it('lets a fresh prefix have its burst of full-size replies, and trips on the next', () => {
    const t = new BudgetTable(10);
    for (let i = 1; i <= 10; i++) expect(t.charge('198.18.0.1', 1232, settings, 0), `reply ${i}`).toBe(true);
    expect(t.charge('198.18.0.1', 1232, settings, 0)).toBe(false);
  });

  it('refills at the rate: one 1232-byte reply every 1232/rate ms', () => {
    const b = newBucket(12320, 0);
    for (let i = 0; i < 10; i++) charge(b, 1232, 12320, perMs, 0);
    const interval = 1232 / perMs;
    expect(charge(b, 1232, 12320, perMs, interval - 1)).toBe(false);
    expect(charge(b, 1232, 12320, perMs, interval + 1)).toBe(true);
  });

  it('never trips a client exactly at the refill rate, however long', () => {
    const b = newBucket(12320, 0);
    const interval = 1232 / perMs;
    for (let i = 0; i < 10_000; i++) expect(charge(b, 1232, 12320, perMs, i * interval)).toBe(true);
  });

  it('does not store more than the capacity after a long quiet time', () => {
    const b = newBucket(12320, 0);
    charge(b, 1, 12320, perMs, 10 ** 9);
    expect(b.tokens).toBe(12319);
  });

  it('counts replies, not bytes, for a packet rate', () => {
    const s = compilePolicy(configSchema.parse({ policy: { large_response: { rate: '1/sec', burst: 3 } } }));
    const t = new BudgetTable(10);
    for (let i = 0; i < 3; i++) expect(t.charge('p', 60_000, s, 0)).toBe(true);
    expect(t.charge('p', 700, s, 0)).toBe(false);
    expect(t.charge('p', 700, s, 1000)).toBe(true);
  });

  it('keeps at most max_tracked prefixes, forgetting the least recently used', () => {
    const t = new BudgetTable(1000);
    for (let i = 0; i < 100_000; i++) t.charge(`p${i}`, 800, settings, i);
    expect(t.size).toBe(1000);
  });
});
