// What may be blocked: normalisation, the addresses no client has, loopback
// kept out of the kernel, and a prefix that would cover an allowlisted address.
import { describe, expect, it } from 'vitest';
import { blockTarget, normaliseAddress, offenderBlockable } from '../../../src/policy/block-target.js';
import { parseCidr, type Cidr } from '../../../src/net/cidr.js';

const s = (prefixV4 = 32, prefixV6 = 64, allow: string[] = []) => ({ prefixV4, prefixV6, allowlist: allow.map((c) => parseCidr(c) as Cidr) });

describe('blockTarget', () => {
  it('refuses what no client can be: unspecified, 0/8, multicast, broadcast, zone ids, garbage', () => {
    for (const bad of ['0.0.0.0', '::', '0.1.2.3', '224.0.0.1', '255.255.255.255', 'ff02::1', 'fe80::1%eth0', '::ffff:0.0.0.0', 'example.com', '1.2.3', '']) {
      const t = blockTarget(bad, s());
      expect(t.ok, bad).toBe(false);
      if (!t.ok) expect(t.reason).toBe('invalid');
    }
  });

  it('normalises IPv4-mapped IPv6 to IPv4, so ::ffff:127.0.0.9 is 127.0.0.9/32 and never ::/64', () => {
    expect(blockTarget('::ffff:127.0.0.9', s())).toMatchObject({ ok: true, address: '127.0.0.9', family: 4, prefix: '127.0.0.9' });
    expect(blockTarget('::ffff:c612:10', s(24))).toMatchObject({ ok: true, address: '198.18.0.16', family: 4, prefix: '198.18.0.0/24', kernel: true });
    expect(normaliseAddress('FD00:A3B1:0:0::10')).toEqual({ address: 'fd00:a3b1::10', family: 6, v4: -1 });
  });

  it('keeps loopback, and a prefix whose network is unspecified, out of the kernel', () => {
    expect(blockTarget('127.0.0.1', s())).toMatchObject({ ok: true, kernel: false });
    expect(blockTarget('::1', s(32, 128))).toMatchObject({ ok: true, prefix: '::1', kernel: false });
    expect(blockTarget('::1', s())).toMatchObject({ ok: true, prefix: '0:0:0:0:0:0:0:0/64', kernel: false });
    expect(blockTarget('::2', s())).toMatchObject({ ok: true, kernel: false });
    expect(blockTarget('198.18.0.10', s())).toMatchObject({ ok: true, kernel: true });
    expect(blockTarget('fd00:a3b1::10', s())).toMatchObject({ ok: true, prefix: 'fd00:a3b1:0:0:0:0:0:0/64', kernel: true });
  });

  it('a worker never blocks what holds ::1 on the word of the ladder (a spoofer can send from ::/64)', () => {
    expect(offenderBlockable({ address: '::5', prefix: '0:0:0:0:0:0:0:0/64', family: 6 }, s())).toBe(false);
    expect(offenderBlockable({ address: '::1', prefix: '::1', family: 6 }, s(32, 128))).toBe(false);
    expect(offenderBlockable({ address: '::5', prefix: '::5', family: 6 }, s(32, 128))).toBe(true);
    expect(offenderBlockable({ address: 'fd00:a3b1::10', prefix: 'fd00:a3b1:0:0:0:0:0:0/64', family: 6 }, s())).toBe(true);
  });

  it('refuses a prefix that contains an allowlisted address, IPv4 /24 and IPv6 /64', () => {
    const t = blockTarget('198.18.0.11', s(24, 64, ['198.18.0.12/32']));
    expect(t).toMatchObject({ ok: false, reason: 'allowlist' });
    if (!t.ok) expect(t.error).toBe('198.18.0.0/24 contains the allowlisted 198.18.0.12/32');
    expect(blockTarget('198.18.1.11', s(24, 64, ['198.18.0.12/32']))).toMatchObject({ ok: true });
    expect(blockTarget('198.18.0.11', s(32, 64, ['198.18.0.12/32']))).toMatchObject({ ok: true });
    expect(blockTarget('fd00:a3b1::99', s(32, 64, ['fd00:a3b1::10/128']))).toMatchObject({ ok: false, reason: 'allowlist' });
    expect(blockTarget('fd00:a3b1:0:1::99', s(32, 64, ['fd00:a3b1::10/128']))).toMatchObject({ ok: true });
    // an allowlist wider than the prefix covers it too
    expect(blockTarget('10.1.2.3', s(32, 64, ['10.0.0.0/8']))).toMatchObject({ ok: false, reason: 'allowlist' });
  });
});
