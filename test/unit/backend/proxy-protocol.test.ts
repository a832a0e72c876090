import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIPv4, SocketAddress } from 'node:net';
import { PROXY_V2_LOCAL, proxyV2Header } from '../../../src/backend/proxy-protocol.js';
import { ipToBigInt } from '../../../src/net/cidr.js';

const SIG = '0d0a0d0a000d0a515549540a';

describe('PROXY v2 header', () => {
  it('encodes UDP over IPv4 (haproxy proxy-protocol.txt 2.2)', () => {
    const h = proxyV2Header('udp', '198.18.0.7', 40000, '127.0.0.1', 53);
    expect(h.toString('hex')).toBe(`${SIG}21` + '12' + '000c' + 'c6120007' + '7f000001' + '9c40' + '0035');
  });

  it('encodes TCP over IPv6', () => {
    const h = proxyV2Header('tcp', 'fd00::1', 1, '::1', 53);
    expect(h.subarray(12, 16).toString('hex')).toBe('21210024');
    expect(h.length).toBe(16 + 36);
    expect(h.subarray(16, 32).toString('hex')).toBe('fd000000000000000000000000000001');
    expect(h.subarray(32, 48).toString('hex')).toBe('00000000000000000000000000000001');
  });

  it('has a LOCAL form for health checks', () => {
    expect(PROXY_V2_LOCAL.toString('hex')).toBe(`${SIG}20000000`);
  });

  it('writes the same bytes as the BigInt encoder it replaced: IPv4, IPv6, mapped, mixed families, garbage', () => {
    // the encoder before the in-place parse, kept as the oracle
    const oracle = (proto: 'udp' | 'tcp', src: string, sp: number, dst: string, dp: number): string => {
      const n = isIPv4(src) ? 4 : 16;
      const out = Buffer.alloc(16 + 2 * n + 4);
      Buffer.from(`${SIG}21`, 'hex').copy(out);
      out[13] = (n === 4 ? 0x10 : 0x20) | (proto === 'udp' ? 2 : 1);
      out.writeUInt16BE(2 * n + 4, 14);
      [src, dst].forEach((a, k) => {
        let v = ipToBigInt(a)?.value ?? 0n;
        for (let i = n - 1; i >= 0; i--, v >>= 8n) out[16 + k * n + i] = Number(v & 0xffn);
      });
      out.writeUInt16BE(sp, 16 + 2 * n);
      out.writeUInt16BE(dp, 18 + 2 * n);
      return out.toString('hex');
    };
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
    const v6 = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
      .map((g) => new SocketAddress({ address: g.map((x) => x.toString(16)).join(':'), family: 'ipv6' }).address);
    const mapped = v4.map((a) => `::ffff:${a}`);
    const address = fc.oneof(v4, v6, mapped, fc.constantFrom('', 'x', '1.2.3', '::ffff:7f00:1', 'fe80::1%lo'));
    fc.assert(
      fc.property(fc.constantFrom('udp' as const, 'tcp' as const), address, fc.nat(65535), address, fc.nat(65535), (proto, src, sp, dst, dp) => {
        expect(proxyV2Header(proto, src, sp, dst, dp).toString('hex')).toBe(oracle(proto, src, sp, dst, dp));
      }),
      { numRuns: 20_000, seed: 0x2b },
    );
  });
});
