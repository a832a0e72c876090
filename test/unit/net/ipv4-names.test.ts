// The IPv4 name cache of the batched-UDP listener and the replay: the text
// dgram would give, the same string object for the same address, and never a
// wrong name when two addresses share a slot.
import { describe, expect, it } from 'vitest';
import { IPV4_NAME_SLOT_BITS, Ipv4Names } from '../../../src/net/ipv4-names.js';

const bytes = (a: string): Uint8Array => Uint8Array.from(a.split('.').map(Number));
const slotOf = (a: string): number => {
  const b = bytes(a);
  const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  return Math.imul(v, 0x9e3779b1) >>> (32 - IPV4_NAME_SLOT_BITS);
};

describe('Ipv4Names', () => {
  it('gives the dotted quad, the same string object again for the same address, at any offset', () => {
    const names = new Ipv4Names();
    const buf = Uint8Array.from([9, 9, 198, 18, 0, 255, 7]);
    const first = names.name(buf, 2);
    expect(first).toBe('198.18.0.255');
    expect(names.name(Uint8Array.from([198, 18, 0, 255]), 0)).toBe(first);
    expect(names.name(Uint8Array.from([0, 0, 0, 0]), 0)).toBe('0.0.0.0');
    expect(names.name(Uint8Array.from([255, 255, 255, 255]), 0)).toBe('255.255.255.255');
  });

  it('names both addresses right when they share a slot, each time', () => {
    const a = '198.18.0.1';
    let b = '';
    for (let i = 2; b === '' && i < 1 << 24; i++) {
      const c = `${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.1`;
      if (slotOf(c) === slotOf(a)) b = c;
    }
    expect(b).not.toBe('');
    const names = new Ipv4Names();
    for (let round = 0; round < 3; round++) {
      expect(names.name(bytes(a), 0)).toBe(a);
      expect(names.slot).toBe(slotOf(a));
      expect(names.name(bytes(b), 0)).toBe(b);
      expect(names.slot).toBe(slotOf(a));
    }
  });
});
