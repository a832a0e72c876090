// The native listener turns source address bytes into text; policy keys on that text,
// so it must be what dgram gives for the same address (libuv's inet_ntop, which
// net.SocketAddress uses too): dotted quads, RFC 5952 for IPv6 with the dotted tails.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SocketAddress } from 'node:net';
import { ipv4TextAt as formatIpv4, ipv6TextAt as formatIpv6 } from '../../../src/net/ip.js';

const groups = (b: Uint8Array): string => Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');
const canonical = (b: Uint8Array): string => new SocketAddress({ address: groups(b), family: 'ipv6' }).address;

// bytes with long zero runs, ::ffff: and ::a.b.c.d shapes, as often as random ones
const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const v6 = fc.oneof(
  fc.array(group, { minLength: 8, maxLength: 8 }),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([a, b]) => [0, 0, 0, 0, 0, 0xffff, a, b]),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([a, b]) => [0, 0, 0, 0, 0, 0, a, b]),
).map((g) => Uint8Array.from(g.flatMap((x) => [x >> 8, x & 0xff])));

describe('native source addresses as text', () => {
  it('IPv6: the same text as inet_ntop, at any offset', () => {
    fc.assert(
      fc.property(v6, fc.nat({ max: 32 }), (b, off) => {
        const buf = new Uint8Array(off + 16);
        buf.set(b, off);
        expect(formatIpv6(buf, off)).toBe(canonical(b));
      }),
      { numRuns: 20_000, seed: 0x6a },
    );
  });

  it('IPv4: a dotted quad', () => {
    expect(formatIpv4(Uint8Array.from([9, 198, 18, 0, 255, 9]), 1)).toBe('198.18.0.255');
  });
});
