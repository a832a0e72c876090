import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SocketAddress } from 'node:net';
import { anyCidrContains, ipToBigInt, parseCidr, type Cidr } from '../../../src/net/cidr.js';
import { parseHostPort } from '../../../src/config/address.js';

describe('allowlist CIDRs', () => {
  const list = ['192.0.2.0/24', '198.18.5.5', 'fd00:a3b1::/32'].map((c) => parseCidr(c)!);
  it.each([
    ['192.0.2.0', true], ['192.0.2.255', true], ['192.0.3.0', false],
    ['198.18.5.5', true], ['198.18.5.6', false],
    ['fd00:a3b1::1', true], ['fd00:a3b1:ffff::', true], ['fd00:a3b2::1', false],
    ['::ffff:192.0.2.1', false],
  ])('%s -> %s', (ip, expected) => {
    expect(anyCidrContains(list, ip)).toBe(expected);
  });

  it('matches as the BigInt masks it replaced: IPv4, IPv6, mapped, both edges of each CIDR', () => {
    // the matcher before BlockList, kept as the oracle: a CIDR matches only addresses of its own family
    const oracle = (cidrs: Cidr[], ip: string): boolean => cidrs.some((c) => {
      const p = ipToBigInt(ip);
      const width = c.family === 4 ? 32n : 128n;
      const mask = ((1n << width) - 1n) ^ ((1n << (width - BigInt(c.bits))) - 1n);
      return p !== null && p.family === c.family && (p.value & mask) === c.network;
    });
    const v4 = fc.tuple(fc.constantFrom(0, 10, 127, 198, 255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
    const v6 = fc.tuple(fc.constantFrom('fd00:a3b1', '0:0', 'fd00:a3b0', '2001:db8'), fc.nat(0xffff), fc.nat(0xffff)).map(([p, a, b]) => `${p}::${a.toString(16)}:${b.toString(16)}`);
    const address = fc.oneof(v4, v6, v4.map((a) => `::ffff:${a}`), fc.constantFrom('', 'x', '1.2.3', 'fe80::1%lo', '::', '0.0.0.0'));
    const cidr = fc.oneof(
      fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, n]) => `${a}/${n}`),
      fc.tuple(v6, fc.integer({ min: 0, max: 128 })).map(([a, n]) => `${a}/${n}`),
      fc.constantFrom('::ffff:0:0/96', '::ffff:198.18.0.0/112', '0.0.0.0/0', '::/0'),
    );
    fc.assert(
      fc.property(fc.array(cidr, { minLength: 1, maxLength: 4 }), fc.array(address, { minLength: 1, maxLength: 8 }), (texts, ips) => {
        const cidrs = texts.map((t) => parseCidr(t)!);
        // the edges of each CIDR: its first and last address
        const edges = cidrs.flatMap((c) => {
          const width = c.family === 4 ? 32 : 128;
          const last = c.network | ((1n << BigInt(width - c.bits)) - 1n);
          return [c.network, last, last + 1n].filter((v) => v < 1n << BigInt(width)).map((v) => c.family === 4 ? [24, 16, 8, 0].map((s) => Number((v >> BigInt(s)) & 255n)).join('.') : new SocketAddress({ address: Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':'), family: 'ipv6' }).address);
        });
        for (const ip of [...ips, ...edges]) expect(anyCidrContains(cidrs, ip), `${ip} in ${texts.join(' ')}`).toBe(oracle(cidrs, ip));
      }),
      { numRuns: 3_000, seed: 0x22 },
    );
  });

  it('rejects what is not a CIDR', () => {
    for (const bad of ['192.0.2.0/33', 'fd00::/129', 'example.com', '192.0.2.0/', '192.0.2.0/x']) expect(parseCidr(bad)).toBeNull();
  });

  it('parses host:port with IPv6 in brackets only', () => {
    expect(parseHostPort('[::1]:53')).toEqual({ host: '::1', port: 53, family: 6 });
    expect(parseHostPort('::1:53')).toBeNull();
    expect(parseHostPort('127.0.0.1:65536')).toBeNull();
    expect(parseHostPort('example.com:53')).toBeNull();
  });
});
