// Per-client TCP connection caps counted per budget prefix, with fake addresses.
import { describe, expect, it } from 'vitest';
import { ConnectionLimits } from '../../../src/listener/tcp.js';
import { prefixKey } from '../../../src/policy/prefix.js';

const keyOf = (address: string, prefixV4 = 32, prefixV6 = 64): string =>
  prefixKey(address, address.includes(':') ? 6 : 4, prefixV4, prefixV6);

describe('ConnectionLimits keyed by budget prefix', () => {
  it('counts every address of one IPv6 /64 as one client', () => {
    const limits = new ConnectionLimits({ max_connections: 1024, max_connections_per_client: 4 });
    const opened = Array.from({ length: 100 }, (_, i) => limits.tryOpen(keyOf(`2001:db8:1:2::${(i + 1).toString(16)}`)));
    expect(opened.filter(Boolean)).toHaveLength(4);
    // a neighbouring /64 is another client
    expect(limits.tryOpen(keyOf('2001:db8:1:3::1'))).toBe(true);
    expect(limits.open).toBe(5);
  });

  it('counts IPv4 per /32 by default and per the configured prefix otherwise', () => {
    const per32 = new ConnectionLimits({ max_connections: 1024, max_connections_per_client: 2 });
    expect([1, 2, 3, 4].map((i) => per32.tryOpen(keyOf(`192.0.2.${i}`))).every(Boolean)).toBe(true);
    const per24 = new ConnectionLimits({ max_connections: 1024, max_connections_per_client: 2 });
    expect([1, 2, 3, 4].map((i) => per24.tryOpen(keyOf(`192.0.2.${i}`, 24)))).toEqual([true, true, false, false]);
  });

  it('frees a slot when a connection closes, and holds the total cap', () => {
    const limits = new ConnectionLimits({ max_connections: 3, max_connections_per_client: 2 });
    const a = keyOf('2001:db8::1');
    expect(limits.tryOpen(a)).toBe(true);
    expect(limits.tryOpen(keyOf('2001:db8::2'))).toBe(true);
    expect(limits.tryOpen(keyOf('2001:db8::3'))).toBe(false);
    limits.close(a);
    expect(limits.tryOpen(keyOf('2001:db8::3'))).toBe(true);
    expect(limits.tryOpen(keyOf('198.51.100.1'))).toBe(true);
    expect(limits.tryOpen(keyOf('198.51.100.2'))).toBe(false);
    expect(limits.open).toBe(3);
  });
});
