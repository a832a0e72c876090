// Address text in one place: numbers and groups to the text dgram gives, and
// an operator's or offender's address read as a client's, with one set of
// messages for what can never be one.
import { describe, expect, it } from 'vitest';
import { SocketAddress } from 'node:net';
import { ipv4Text, ipv6Text, parseIpv6, readClientAddress } from '../../../src/net/ip.js';

describe('address text', () => {
  it('writes a 32-bit number as a dotted quad, the top byte first', () => {
    expect(ipv4Text(0xc6120001)).toBe('198.18.0.1');
    expect(ipv4Text(0xffffff00)).toBe('255.255.255.0');
    expect(ipv4Text(0)).toBe('0.0.0.0');
  });

  it('writes IPv6 groups as inet_ntop does, dotted tails included', () => {
    for (const text of ['fd00:a3b1::10', '::1', '::2', '::', '::ffff:198.18.0.16', '::198.18.0.16', '1:0:0:2::3', '2001:db8:0:1:1:1:1:1', 'ffff::']) {
      const g = new Uint16Array(8);
      expect(parseIpv6(text, g), text).toBe(true);
      expect(ipv6Text(g), text).toBe(new SocketAddress({ address: text, family: 'ipv6' }).address);
    }
  });

  it('reads a client address: canonical text, mapped IPv4 as IPv4, one message for each refusal', () => {
    expect(readClientAddress('FD00:A3B1:0:0::10')).toMatchObject({ family: 6, address: 'fd00:a3b1::10' });
    expect(readClientAddress('::ffff:7f00:9')).toEqual({ family: 4, address: '127.0.0.9', v4: 0x7f000009 });
    expect(readClientAddress('fe80::1%eth0')).toEqual({ error: '"fe80::1%eth0": an address with a zone id cannot be blocked' });
    expect(readClientAddress('example.test')).toEqual({ error: '"example.test" is not an IP address' });
    expect(readClientAddress('01.2.3.4')).toEqual({ error: '"01.2.3.4" is not an IP address' });
    for (const u of ['0.0.0.0', '::', '::ffff:0.0.0.0']) expect(readClientAddress(u)).toEqual({ error: `"${u}" is the unspecified address, never a client` });
  });
});
