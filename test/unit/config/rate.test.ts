import { describe, expect, it } from 'vitest';
import { parseRate } from '../../../src/config/rate.js';

describe('parseRate (iptables hashlimit syntax)', () => {
  it.each([
    ['50kb/min', 'bytes', (50 * 1024) / 60_000],
    ['50kb/minute', 'bytes', (50 * 1024) / 60_000],
    ['1mb/s', 'bytes', (1024 * 1024) / 1000],
    ['100b/sec', 'bytes', 100 / 1000],
    ['2gb/day', 'bytes', (2 * 1024 ** 3) / 86_400_000],
    ['1000/sec', 'packets', 1],
    ['60/m', 'packets', 60 / 60_000],
    ['3600/hour', 'packets', 1 / 1000],
  ])('%s', (text, unit, perMs) => {
    const r = parseRate(text);
    expect(r?.unit).toBe(unit);
    expect(r?.perMs).toBeCloseTo(perMs, 12);
  });

  it.each(['', '50', '50kb', 'kb/min', '50kb/fortnight', '-5/sec', '0/sec', '50tb/min', '50kb/min/x'])('rejects %j', (text) => {
    expect(parseRate(text)).toBeNull();
  });
});
