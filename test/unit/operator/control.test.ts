// The control plane's pure checks: the token's proofs and their one-time
// nonces, Host and Origin rules, which addresses may be blocked by hand.
import { describe, expect, it } from 'vitest';
import { hostAllowed, originAllowed, parseBlockAddress, parseBlockTargetText, requestProven } from '../../../src/operator/control.js';
import { Challenges, CHALLENGE_TTL_MS } from '../../../src/operator/challenges.js';
import { authorizationHeader, clientProof, newNonce, parseAuthorization, serverProof } from '../../../src/operator/proof.js';

const listen = { host: '127.0.0.1', port: 9153, family: 4 } as const;

describe('requestProven', () => {
  const t = 'a'.repeat(64);
  const target = '/api/blocks?address=198.18.0.9';
  const signed = (c: Challenges, now = 0, token = t, method = 'POST', tgt = target): { header: string; nonce: string } => {
    const nonce = newNonce();
    c.issue(nonce, now);
    return { nonce, header: authorizationHeader(nonce, clientProof(token, nonce, method, tgt)) };
  };
  it('takes a proof made with the token over a nonce this server issued, for that method and target', () => {
    const c = new Challenges();
    expect(requestProven(signed(c).header, 'POST', target, t, c, 1)).toBe(true);
  });
  it('takes each nonce once: a replayed proof is refused', () => {
    const c = new Challenges();
    const { header } = signed(c);
    expect(requestProven(header, 'POST', target, t, c, 1)).toBe(true);
    expect(requestProven(header, 'POST', target, t, c, 2)).toBe(false);
  });
  it('refuses another token, method or target, a nonce it never issued, an expired one, and no token at all', () => {
    const c = new Challenges();
    expect(requestProven(signed(c, 0, 'b'.repeat(64)).header, 'POST', target, t, c, 1)).toBe(false);
    expect(requestProven(signed(c).header, 'DELETE', target, t, c, 1)).toBe(false);
    expect(requestProven(signed(c).header, 'POST', '/api/blocks?address=198.18.0.10', t, c, 1)).toBe(false);
    const nonce = newNonce();
    expect(requestProven(authorizationHeader(nonce, clientProof(t, nonce, 'POST', target)), 'POST', target, t, c, 1)).toBe(false);
    expect(requestProven(signed(c).header, 'POST', target, t, c, CHALLENGE_TTL_MS)).toBe(true);
    expect(requestProven(signed(c).header, 'POST', target, t, c, CHALLENGE_TTL_MS + 1)).toBe(false);
    expect(requestProven(signed(c).header, 'POST', target, null, c, 1)).toBe(false);
    expect(requestProven(`Bearer ${t}`, 'POST', target, t, c, 1)).toBe(false);
    expect(requestProven(undefined, 'POST', target, t, c, 1)).toBe(false);
  });
  it('a wrong proof uses the nonce up too', () => {
    const c = new Challenges();
    const { nonce } = signed(c);
    expect(requestProven(authorizationHeader(nonce, '0'.repeat(64)), 'POST', target, t, c, 1)).toBe(false);
    expect(requestProven(authorizationHeader(nonce, clientProof(t, nonce, 'POST', target)), 'POST', target, t, c, 1)).toBe(false);
  });
  it('server and client proofs differ for the same nonces (one cannot stand for the other)', () => {
    const a = newNonce();
    const b = newNonce();
    expect(serverProof(t, a, b)).not.toBe(clientProof(t, a, 'POST', b));
    expect(serverProof(t, a, b)).toMatch(/^[0-9a-f]{64}$/);
  });
  it('parses only its own Authorization scheme', () => {
    const n = 'c'.repeat(64);
    expect(parseAuthorization(authorizationHeader(n, 'd'.repeat(64)))).toEqual({ nonce: n, proof: 'd'.repeat(64) });
    for (const h of [`Bearer ${n}`, `Ampguard-HMAC nonce=${n}`, `Ampguard-HMAC nonce=${n}, proof=xyz`, 'x'.repeat(400)]) expect(parseAuthorization(h), h).toBeNull();
  });
});

describe('Challenges', () => {
  it('keeps at most its bound of outstanding nonces, forgetting the oldest first', () => {
    const c = new Challenges(1000, 3);
    for (const n of ['a', 'b', 'c', 'd']) c.issue(n, 0);
    expect(c.size).toBe(3);
    expect(c.take('a', 1)).toBe(false);
    expect(c.take('d', 1)).toBe(true);
  });
  it('drops expired nonces when it issues new ones', () => {
    const c = new Challenges(10, 100);
    c.issue('a', 0);
    c.issue('b', 5);
    c.issue('c', 11);
    expect(c.size).toBe(2);
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
