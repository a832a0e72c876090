// Answers ampguard builds itself: TC=1 (any-to-tcp, size-to-tcp), SERVFAIL
// (backend timeout) and NOTIMP (opcodes never forwarded). TC and SERVFAIL echo
// the question and, when the query had one, an OPT record; NOTIMP only the
// question. They carry nothing else, so they are always small.
import { FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_LEN, OPCODE_MASK, RCODE_NOTIMP, RCODE_SERVFAIL, TYPE_OPT } from './header.js';
import type { ParsedQuery } from './query.js';

const OPT_LEN = 11;
/** the UDP payload size we advertise in our own OPT records (the DNS Flag Day 2020 value) */
const OUR_EDNS_UDP_SIZE = 1232;
const DO_BIT = 0x8000;

function build(query: Buffer, parsed: ParsedQuery, extraFlags: number): Buffer {
  const hasOpt = parsed.ednsUdpSize > 0;
  const qlen = parsed.qEnd - HEADER_LEN;
  const out = Buffer.allocUnsafe(HEADER_LEN + qlen + (hasOpt ? OPT_LEN : 0));
  const flags = FLAG_QR | (parsed.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | extraFlags;
  out.writeUInt16BE(parsed.id, 0);
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(hasOpt ? 1 : 0, 10);
  query.copy(out, HEADER_LEN, HEADER_LEN, parsed.qEnd);
  if (hasOpt) {
    const o = parsed.qEnd;
    out[o] = 0; // root owner name
    out.writeUInt16BE(TYPE_OPT, o + 1);
    out.writeUInt16BE(OUR_EDNS_UDP_SIZE, o + 3);
    out.writeUInt32BE(parsed.ednsTtl & DO_BIT, o + 5);
    out.writeUInt16BE(0, o + 9);
  }
  return out;
}

/** TC=1 with the question only: "retry over TCP". */
export function buildTruncated(query: Buffer, parsed: ParsedQuery): Buffer {
  return build(query, parsed, FLAG_TC);
}

export function buildServfail(query: Buffer, parsed: ParsedQuery): Buffer {
  return build(query, parsed, RCODE_SERVFAIL);
}

/**
 * NOTIMP for an opcode ampguard does not forward: header and question only (no
 * OPT), so it is never larger than the query that caused it (docs/hostile-input.md).
 */
export function buildNotimp(query: Buffer, parsed: ParsedQuery): Buffer {
  const out = Buffer.allocUnsafe(parsed.qEnd);
  out.writeUInt16BE(parsed.id, 0);
  out.writeUInt16BE(FLAG_QR | (parsed.flags & (OPCODE_MASK | FLAG_RD)) | RCODE_NOTIMP, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(0, 10);
  query.copy(out, HEADER_LEN, HEADER_LEN, parsed.qEnd);
  return out;
}
