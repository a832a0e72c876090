// The reply checks are total: any buffer against any query, never a throw.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { replyHeaderProblem, replyQuestionProblem } from '../../../src/dns/reply-check.js';
import { parseQuery } from '../../../src/dns/query.js';
import { query } from '../../helpers/wire.js';

const q = query('www.example.test', 'A', 7);
const qEnd = parseQuery(q)!.qEnd;
/** both checks, in the order the UDP path and the TCP upstream run them: true when `reply` may complete the query */
const replyMatches = (reply: Buffer, query: Buffer, end: number): boolean =>
  replyHeaderProblem(reply) === null && replyQuestionProblem(reply, query, end) === null;
const asReply = (b: Buffer): Buffer => {
  const r = Buffer.from(b);
  r[2] = r[2]! | 0x80;
  return r;
};

describe('reply checks', () => {
  it('names what is wrong with a reply', () => {
    expect(replyHeaderProblem(Buffer.alloc(11))).toBe('short');
    expect(replyHeaderProblem(Buffer.from(q))).toBe('not_response');
    expect(replyHeaderProblem(asReply(q))).toBeNull();
    // a 12-byte FORMERR: header only, shorter than the question
    expect(replyQuestionProblem(asReply(q).subarray(0, 12), q, qEnd)).toBe('short');
    expect(replyQuestionProblem(asReply(q).subarray(0, qEnd - 1), q, qEnd)).toBe('short');
    const other = asReply(q);
    other[14] = 0x7a;
    expect(replyQuestionProblem(other, q, qEnd)).toBe('question_mismatch');
    expect(replyMatches(asReply(q), q, qEnd)).toBe(true);
    expect(replyMatches(asReply(q).subarray(0, 12), q, qEnd)).toBe(false);
  });

  it('never throws, whatever the lengths and offsets', () => {
    let thrown: unknown = null;
    for (let i = 0; i < 20_000 && thrown === null; i++) {
      const reply = randomBytes(i % 80);
      const end = ((i * 7919) % 120) - 10;
      try {
        replyMatches(reply, q, end);
        replyQuestionProblem(reply, q, Number.NaN);
      } catch (err) {
        thrown = err;
      }
    }
    expect(thrown).toBeNull();
    expect(replyQuestionProblem(asReply(q), q, q.length + 5)).toBe('question_mismatch');
  });
});
