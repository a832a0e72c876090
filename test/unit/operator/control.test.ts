// The control plane's pure checks: token comparison, Host and Origin rules,
// which addresses may be blocked by hand.
import { describe, expect, it } from 'vitest';
import { hostAllowed, originAllowed, parseBlockAddress, parseBlockTargetText, tokenMatches } from '../../../src/operator/control.js';

const listen = { host: '127.0.0.1', port: 9153, family: 4 } as const;

describe('tokenMatches', () => {
  it('takes only the exact bearer token', () => {
    const t = 'a'.repeat(64);
    expect(tokenMatches(`Bearer ${t}`, t)).toBe(true);
    expect(tokenMatches(`bearer ${t}`, t)).toBe(true);
    expect(tokenMatches(`Bearer ${t}b`, t)).toBe(false);
    expect(tokenMatches(`Bearer ${t.slice(1)}`, t)).toBe(false);
    expect(tokenMatches(`Basic ${t}`, t)).toBe(false);
    expect(tokenMatches(undefined, t)).toBe(false);
    expect(tokenMatches(`Bearer ${t}`, null)).toBe(false);
  });
});

describe('hostAllowed', () => {
  it('accepts IP literals and localhost on the listener port, refuses names (DNS rebinding) and other ports', () => {
    for (const h of ['127.0.0.1:9153', 'localhost:9153', '[::1]:9153', 'LOCALHOST:9153']) expect(hostAllowed(h, listen), h).toBe(true);
    for (const h of ['evil.example:9153', '127.0.0.1:80', '127.0.0.1', 'localhost.evil.example:9153', '', '[::1', undefined]) expect(hostAllowed(h, listen), String(h)).toBe(false);
    expect(hostAllowed('dns1.example.net:9153', { host: 'dns1.example.net', port: 9153, family: 4 })).toBe(true);
  });
});

describe('originAllowed', () => {
  it('lets through non-browser clients and same-origin pages only', () => {
    expect(originAllowed({ host: '127.0.0.1:9153' })).toBe(true);
    expect(originAllowed({ host: '127.0.0.1:9153', origin: 'http://127.0.0.1:9153', 'sec-fetch-site': 'same-origin' })).toBe(true);
    expect(originAllowed({ host: '127.0.0.1:9153', origin: 'http://evil.example' })).toBe(false);
    expect(originAllowed({ host: '127.0.0.1:9153', origin: 'null' })).toBe(false);
    expect(originAllowed({ host: '127.0.0.1:9153', origin: 'https://127.0.0.1:9153' })).toBe(false);
    expect(originAllowed({ host: '127.0.0.1:9153', 'sec-fetch-site': 'cross-site' })).toBe(false);
    expect(originAllowed({ host: '127.0.0.1:9153', 'sec-fetch-site': 'same-site' })).toBe(false);
  });
});

describe('parseBlockTargetText', () => {
  it('takes an address, or a network with its length for unblocking what the ladder blocked', () => {
    expect(parseBlockTargetText('192.0.2.1')).toEqual({ ok: true, address: '192.0.2.1', family: 4 });
    expect(parseBlockTargetText('198.18.2.0/24')).toEqual({ ok: true, address: '198.18.2.0', family: 4, bits: 24 });
    expect(parseBlockTargetText('fd00:a3b2::/48')).toEqual({ ok: true, address: 'fd00:a3b2::', family: 6, bits: 48 });
    for (const bad of ['198.18.2.0/33', '198.18.2.0/', '198.18.2.0/x', '198.18.2.0/0', '0.0.0.0/8', '::/0', 'fd00::/129', 'a/24']) {
      expect(parseBlockTargetText(bad).ok, bad).toBe(false);
    }
  });
});

describe('parseBlockAddress', () => {
  it('turns IPv4-mapped addresses into the IPv4 client, in both spellings', () => {
    expect(parseBlockAddress('::ffff:127.0.0.9')).toEqual({ ok: true, address: '127.0.0.9', family: 4 });
    expect(parseBlockAddress('::FFFF:7f00:9')).toEqual({ ok: true, address: '127.0.0.9', family: 4 });
    expect(parseBlockAddress('2001:db8::1')).toEqual({ ok: true, address: '2001:db8::1', family: 6 });
    expect(parseBlockAddress('192.0.2.1')).toEqual({ ok: true, address: '192.0.2.1', family: 4 });
  });

  it('refuses unspecified addresses, zone ids and non-addresses', () => {
    for (const bad of ['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', 'fe80::1%eth0', 'example.test', '', '1.2.3', 'x'.repeat(100)]) {
      expect(parseBlockAddress(bad).ok, bad).toBe(false);
    }
  });
});
