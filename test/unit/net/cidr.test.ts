import { describe, expect, it } from 'vitest';
import { anyCidrContains, parseCidr } from '../../../src/net/cidr.js';
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
