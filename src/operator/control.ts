// Pure checks in front of the operator API's state changes (docs/security.md):
// who may change the block set (a proof made with the token, proof.ts), from where (Host and Origin,
// against cross-site pages and DNS rebinding), and which addresses make sense
// to block at all.
import { isIP } from 'node:net';
import type { HostPort } from '../config/address.js';
import { readClientAddress } from '../net/ip.js';
import { clientProof, parseAuthorization, proofEqual } from './proof.js';
import type { Challenges } from './challenges.js';

/**
 * A change request's Authorization proves the token: a nonce this server
 * issued (used up now, whatever the outcome: no replay) and the HMAC of it,
 * the method and the request target.
 */
export function requestProven(
  header: string | undefined, method: string, target: string, token: string | null, challenges: Challenges, now: number,
): boolean {
  const auth = parseAuthorization(header);
  if (token === null || auth === null) return false;
  if (!challenges.take(auth.nonce, now)) return false;
  return proofEqual(auth.proof, clientProof(token, auth.nonce, method, target));
}

function stripPort(host: string): { name: string; port: string | null } | null {
  const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(host);
  if (v6) return { name: v6[1]!, port: v6[2] ?? null };
  const v4 = /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(host);
  return v4 ? { name: v4[1]!.toLowerCase(), port: v4[2] ?? null } : null;
}

/**
 * A Host header this listener may answer to. DNS rebinding needs a name the
 * attacker controls that resolves to us; an IP literal, `localhost` or the
 * configured listen host cannot be one, so only those are accepted, with the
 * listener's port.
 */
export function hostAllowed(host: string | undefined, listen: HostPort): boolean {
  if (host === undefined) return false;
  const parsed = stripPort(host);
  if (!parsed) return false;
  if (parsed.port !== null && Number(parsed.port) !== listen.port) return false;
  if (parsed.port === null && listen.port !== 80) return false;
  return isIP(parsed.name) !== 0 || parsed.name === 'localhost' || parsed.name === listen.host.toLowerCase();
}

/**
 * A browser names the page that made a request in Origin (and Sec-Fetch-Site);
 * a state change is refused unless it comes from this listener's own pages or
 * from a client that is not a browser (no Origin at all, like the CLI).
 */
export function originAllowed(headers: { origin?: string; host?: string; 'sec-fetch-site'?: string }): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  if (headers.origin === undefined) return true;
  return headers.host !== undefined && headers.origin === `http://${headers.host}`;
}

type BlockAddress = { ok: true; address: string; family: 4 | 6 } | { ok: false; error: string };

/**
 * An address an operator may block or unblock by hand: an IP literal without a
 * zone id, not unspecified; an IPv4-mapped IPv6 address is the IPv4 client it
 * stands for (blocking "::ffff:127.0.0.9" must block 127.0.0.9, not ::/64).
 */
export function parseBlockAddress(text: string): BlockAddress {
  const a = readClientAddress(text);
  return 'error' in a ? { ok: false, error: a.error } : { ok: true, address: a.address, family: a.family };
}

/** An address, or a network "net/len" (what the ladder's aggregate budgets block, docs/defence.md), for `blocks del`. */
type BlockTargetText = (BlockAddress & { ok: true; bits?: number }) | { ok: false; error: string };

export function parseBlockTargetText(text: string): BlockTargetText {
  const slash = text.indexOf('/');
  if (slash < 0) return parseBlockAddress(text);
  const address = parseBlockAddress(text.slice(0, slash));
  if (!address.ok) return address;
  const lenText = text.slice(slash + 1);
  const bits = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(bits >= 1 && bits <= (address.family === 4 ? 32 : 128))) return { ok: false, error: `not a prefix length: "${text}"` };
  return { ...address, bits };
}
