// The CLI's end of the control channel (proof.ts): ask the server to prove it
// holds the token, and only then prove it back for one request. The token
// itself never leaves this process; an impostor on the metrics port (while
// ampguard is down) gets a random nonce and nothing else.
import { formatHostPort, type HostPort } from '../config/address.js';
import { authorizationHeader, clientProof, newNonce, proofEqual, serverProof, NONCE_RE } from './proof.js';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

type ControlOutcome =
  | { kind: 'answer'; answer: ApiAnswer }
  /** nothing listens, or nothing answered in time */
  | { kind: 'unreachable' }
  /** something answered that could not prove it holds the token: not ampguard, or another token */
  | { kind: 'unproven'; detail: string }
  /** ampguard answered the challenge with an error (no token of its own, 503; refused, 403) */
  | { kind: 'refused'; answer: ApiAnswer };

/** a whole request, connect to last byte; the listener answers in milliseconds */
const TIMEOUT_MS = 3000;
/** what may listen on the port is not trusted: an answer is read up to this size */
const MAX_ANSWER_BYTES = 1 << 20;

/** Nothing (usable) came back: refused, reset, timed out, or an answer over 1 MiB. */
class Unanswered extends Error {}

/**
 * fetch refuses the ports browsers block (6000, 6665-6669, 10080 and the
 * others of https://fetch.spec.whatwg.org/#port-blocking) before connecting.
 * Not "nothing listens": the CLI must not fall back to the kernel set while
 * ampguard may be running there, so this is an error of its own.
 */
export class PortRefused extends Error {}

/**
 * One HTTP request to the listener (Node's fetch), its answer as JSON (a body
 * that is not JSON becomes `{ error }`). Throws Unanswered or PortRefused,
 * naming the method and URL, when nothing came back.
 * Redirects are not followed: a proof is for this listener and target only.
 */
export async function requestApi(listen: HostPort, method: string, target: string, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  const url = `http://${formatHostPort(listen)}${target}`;
  try {
    const res = await fetch(url, { method, headers, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await readCapped(res);
    try {
      return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
    } catch {
      return { status: res.status, body: { error: 'not a JSON answer' } };
    }
  } catch (err) {
    const why = failure(err);
    if (why === 'bad port') throw new PortRefused(`${method} ${url}: fetch refuses port ${listen.port} (a port browsers block): give metrics.listen another port`);
    throw new Unanswered(`${method} ${url}: ${why}`, { cause: err });
  }
}

/** requestApi, with null when nothing came back (the caller only needs to know whether ampguard is there). */
export async function callApi(listen: HostPort, method: string, target: string, headers: Record<string, string> = {}): Promise<ApiAnswer | null> {
  try {
    return await requestApi(listen, method, target, headers);
  } catch (err) {
    if (err instanceof Unanswered) return null;
    throw err;
  }
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    // leaving the loop cancels the stream and closes the connection
    if (size > MAX_ANSWER_BYTES) throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch's own message is "fetch failed"; the reason is in its cause (ECONNREFUSED, a timeout). */
function failure(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
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
