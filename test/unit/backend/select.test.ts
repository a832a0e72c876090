import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.js';
import { INITIAL_HEALTH, recordCheck } from '../../../src/backend/health.js';

describe('selectBackend', () => {
  const a = { name: 'a', weight: 1, up: true };
  const b = { name: 'b', weight: 3, up: true };
  const down = { name: 'down', weight: 100, up: false };

  it('shares queries by weight', () => {
    const counts = { a: 0, b: 0, down: 0 };
    for (let i = 0; i < 1000; i++) counts[selectBackend([a, b, down], i / 1000)!.name as 'a']++;
    expect(counts).toEqual({ a: 250, b: 750, down: 0 });
  });

  it('uses every backend when none is up, rather than none', () => {
    const d2 = { ...down, name: 'd2', weight: 1 };
    const picked = new Set([0, 0.5, 0.999].map((r) => selectBackend([down, d2], r)!.name));
    expect(picked).toEqual(new Set(['down', 'd2']));
  });

  it('returns undefined only for an empty pool', () => {
    expect(selectBackend([], 0.5)).toBeUndefined();
  });
});

describe('health state machine', () => {
  it('goes down after `fall` failures in a row and up after `rise` passes', () => {
    let s = INITIAL_HEALTH;
    s = recordCheck(s, false, 3, 2);
    s = recordCheck(s, false, 3, 2);
    expect(s.up).toBe(true);
    s = recordCheck(s, true, 3, 2); // a pass resets the failures
    s = recordCheck(s, false, 3, 2);
    s = recordCheck(s, false, 3, 2);
    expect(s.up).toBe(true);
    s = recordCheck(s, false, 3, 2);
    expect(s.up).toBe(false);
    s = recordCheck(s, true, 3, 2);
    expect(s.up).toBe(false);
    s = recordCheck(s, true, 3, 2);
    expect(s.up).toBe(true);
  });
});
