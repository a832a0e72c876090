// A fault repeated at packet rate logs one line a second, carrying the count of
// the ones it held back.
import { describe, expect, it } from 'vitest';
import { OncePerSecond } from '../../../src/log/once-per-second.js';

describe('OncePerSecond', () => {
  it('logs the first fault of each second and counts the rest onto the next line', () => {
    let now = 10_000;
    const lines: Record<string, unknown>[] = [];
    const log = new OncePerSecond({ error: (o) => lines.push(o as Record<string, unknown>) }, 'boom', () => now);
    for (let i = 0; i < 1000; i++) {
      log.report('udp_query', new Error(`e${i}`));
      now += 2; // 1000 faults over 2 s
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ unit: 'udp_query', err: 'e0', suppressed: 0 });
    expect(lines[1]).toMatchObject({ err: 'e500', suppressed: 499 });
    expect(log.pending).toBe(499);
    log.report('sweep', 'not an Error');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ unit: 'sweep', err: 'not an Error', suppressed: 499 });
  });
});
