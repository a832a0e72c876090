// The CLI's end of the control channel (proof.ts): ask the server to prove it
// holds the token, and only then prove it back for one request. The token
// itself never leaves this process; an impostor on the metrics port (while
// ampguard is down) gets a random nonce and nothing else.
import http from 'node:http';
import type { HostPort } from '../config/address.js';
import { authorizationHeader, clientProof, newNonce, proofEqual, serverProof, NONCE_RE } from './proof.js';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

export type ControlOutcome =
  | { kind: 'answer'; answer: ApiAnswer }
  /** nothing listens, or nothing answered in time */
  | { kind: 'unreachable' }
  /** something answered that could not prove it holds the token: not ampguard, or another token */
  | { kind: 'unproven'; detail: string }
  /** ampguard answered the challenge with an error (no token of its own, 503; refused, 403) */
  | { kind: 'refused'; answer: ApiAnswer };

/** One HTTP request to the listener; null when nothing (parseable) came back. */
export function callApi(listen: HostPort, method: string, target: string, headers: Record<string, string> = {}): Promise<ApiAnswer | null> {
  return new Promise((resolve) => {
    const req = http.request({ host: listen.host, port: listen.port, method, path: target, headers, timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (text.length > 1 << 20) req.destroy();
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: { error: 'not a JSON answer' } });
        }
      });
      res.on('error', () => resolve(null));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** A change (POST/DELETE) made only after the server proved it holds `token`. */
export async function provenRequest(listen: HostPort, token: string, method: string, target: string): Promise<ControlOutcome> {
  const mine = newNonce();
  const challenge = await callApi(listen, 'POST', `/api/challenge?client=${mine}`);
  if (challenge === null) return { kind: 'unreachable' };
  if (challenge.status === 503 || challenge.status === 403) return { kind: 'refused', answer: challenge };
  const nonce = challenge.body.nonce;
  const proof = challenge.body.proof;
  if (challenge.status !== 200 || typeof nonce !== 'string' || typeof proof !== 'string' || !NONCE_RE.test(nonce)) {
    return { kind: 'unproven', detail: `it answered the challenge with ${challenge.status} and no proof` };
  }
  if (!proofEqual(proof, serverProof(token, mine, nonce))) return { kind: 'unproven', detail: 'its proof does not match the token' };
  const answer = await callApi(listen, method, target, { authorization: authorizationHeader(nonce, clientProof(token, nonce, method, target)) });
  return answer === null ? { kind: 'unreachable' } : { kind: 'answer', answer };
}
