import { describe, expect, it } from 'vitest';
import { CappedLog } from '../../../src/log/capped.js';

describe('CappedLog', () => {
  it('logs at most N lines a second and carries the count of the rest on the next line', () => {
    const lines: object[] = [];
    let now = 0;
    const log = new CappedLog({ info: (o) => lines.push(o) }, 2, () => now);
    for (let i = 0; i < 1000; i++) log.info({ i }, 'x');
    expect(lines).toEqual([{ i: 0 }, { i: 1 }]);
    now = 1000;
    log.info({ i: 'next' }, 'x');
    expect(lines[2]).toEqual({ i: 'next', suppressed: 998 });
    log.info({ i: 'again' }, 'x');
    expect(lines[3]).toEqual({ i: 'again' });
  });
});
