// Is a message from a backend the reply to the query we sent? Pure and total:
// any buffer, any length, never throws (Buffer.compare with an offset past the
// end throws ERR_OUT_OF_RANGE, which once ended the process on a 12-byte
// FORMERR). Shared by the UDP and TCP paths; the ID lookup between the two
// checks is theirs. Reasons are the closed label set of
// ampguard_upstream_rejected_total (docs/hostile-input.md).
import { FLAG_QR, HEADER_LEN } from './header.js';

/** why a datagram or message from a backend was not taken as the reply to a query (docs/hostile-input.md) */
export type UpstreamRejectReason = 'short' | 'not_response' | 'unknown_id' | 'question_mismatch';

/** Before the ID lookup: a header to read an ID from, and QR=1. */
export function replyHeaderProblem(reply: Buffer): UpstreamRejectReason | null {
  if (reply.length < HEADER_LEN) return 'short';
  if ((reply[2]! & (FLAG_QR >>> 8)) === 0) return 'not_response';
  return null;
}

/**
 * After the ID lookup: the reply's question section must be byte for byte the
 * query's (bytes [12, qEnd)), so a stray or forged datagram that guessed an ID
 * cannot complete someone else's query.
 */
export function replyQuestionProblem(reply: Buffer, query: Buffer, qEnd: number): UpstreamRejectReason | null {
  if (!(qEnd >= HEADER_LEN && qEnd <= query.length)) return 'question_mismatch';
  if (reply.length < qEnd) return 'short';
  for (let i = HEADER_LEN; i < qEnd; i++) if (reply[i] !== query[i]) return 'question_mismatch';
  return null;
}
