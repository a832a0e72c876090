import { describe, expect, it } from 'vitest';
import { PROXY_V2_LOCAL, proxyV2Header } from '../../../src/backend/proxy-protocol.js';

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
});
