// Copies out of receive slots: exact length, the right bytes, short (byte by
// byte) and long (one set) alike, and independent of the slot afterwards.
import { describe, expect, it } from 'vitest';
import { copyOut } from '../../../src/net/bytes.js';

describe('copyOut', () => {
  it('copies [at, at + length) into a Buffer of its own, for short and long datagrams', () => {
    const slot = Buffer.alloc(4096);
    for (let i = 0; i < slot.length; i++) slot[i] = i * 7;
    for (const [at, length] of [[0, 0], [5, 1], [100, 128], [100, 129], [1000, 3000]] as const) {
      const out = copyOut(slot, at, length);
      expect(out.length).toBe(length);
      expect(out.equals(slot.subarray(at, at + length))).toBe(true);
      slot.fill(0, at, at + length);
      expect(out.equals(Buffer.alloc(length))).toBe(length === 0);
      for (let i = at; i < at + length; i++) slot[i] = i * 7;
    }
  });
});
