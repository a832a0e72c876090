// Each prefix's share of queries in flight upstream: both sides of the limit,
// waiters woken once per ended query, a gone connection waits no more.
import { describe, expect, it } from 'vitest';
import { ClientShares } from '../../../src/pipeline/client-shares.js';

describe('ClientShares', () => {
  it('gives a prefix exactly its share, and another prefix its own', () => {
    const s = new ClientShares(10);
    for (let i = 0; i < 9; i++) s.take('a');
    expect(s.room('a')).toBe(true); // the 10th may go
    s.take('a');
    expect(s.room('a')).toBe(false); // the 11th waits
    expect(s.room('b')).toBe(true);
    s.give('a');
    expect(s.room('a')).toBe(true);
  });

  it('wakes the connections that waited, once, and forgets a prefix with nothing in flight', () => {
    const s = new ClientShares(1);
    s.take('a');
    let woken = 0;
    let gone = 0;
    const wake = (): void => void woken++;
    const goneWake = (): void => void gone++;
    s.wait('a', wake);
    s.wait('a', wake); // the same connection once
    s.wait('a', goneWake);
    s.unwait('a', goneWake);
    s.give('a');
    expect(woken).toBe(1);
    expect(gone).toBe(0);
    s.take('a');
    s.give('a');
    expect(woken).toBe(1); // it did not wait again
    expect(s.tracked).toBe(0);
  });
});
