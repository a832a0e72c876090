// The control channel's proofs (docs/security.md, "The token"): both ends show
// they hold the token without sending it. The CLI sends a random nonce; the
// server answers with a nonce of its own and HMAC(token, both nonces), which an
// impostor on the metrics port cannot make; only then does the CLI send
// HMAC(token, the server's nonce, the method and the request target), good for
// that one request once (the server forgets the nonce when it is used).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCHEME = 'Ampguard-HMAC';
/** 32 random bytes as hex */
export const NONCE_RE = /^[0-9a-f]{64}$/;

export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

function hmac(token: string, parts: readonly string[]): string {
  return createHmac('sha256', token).update(parts.join('\n')).digest('hex');
}

/** What the server shows: it knows the token the client's nonce was answered with. */
export function serverProof(token: string, clientNonce: string, serverNonce: string): string {
  return hmac(token, ['ampguard-server', clientNonce, serverNonce]);
}

/** What the client shows for one request: method and target are bound, so a proof changes nothing else. */
export function clientProof(token: string, serverNonce: string, method: string, target: string): string {
  return hmac(token, ['ampguard-client', serverNonce, method.toUpperCase(), target]);
}

/** Constant-time comparison of two hex proofs. */
export function proofEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function authorizationHeader(serverNonce: string, proof: string): string {
  return `${SCHEME} nonce=${serverNonce}, proof=${proof}`;
}

/** The nonce and proof of an Authorization header, or null when it is not ours or malformed. */
export function parseAuthorization(header: string | undefined): { nonce: string; proof: string } | null {
  if (header === undefined || header.length > 300) return null;
  const m = /^Ampguard-HMAC nonce=([0-9a-f]{64}), proof=([0-9a-f]{64})$/.exec(header.trim());
  return m ? { nonce: m[1]!, proof: m[2]! } : null;
}
