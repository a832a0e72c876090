// Packet-path step 1: what the packet path needs to know of a query, read without a
// full decode. Returns null for anything malformed; the caller counts the drop.
import {
  HEADER_LEN, FLAG_QR, TYPE_OPT, readFlags, readId, readQdcount, readAncount, readNscount, readArcount,
} from './header.js';
import { nameEnd } from './name.js';

export interface ParsedQuery {
  readonly id: number;
  readonly flags: number;
  readonly qtype: number;
  /** offset just past the question: bytes [12, qEnd) are the question */
  readonly qEnd: number;
  /** the client's EDNS UDP payload size, 0 when the query has no OPT record */
  readonly ednsUdpSize: number;
  /** the OPT record's TTL field (extended rcode, version, DO bit), echoed in local answers */
  readonly ednsTtl: number;
}

export function parseQuery(buf: Buffer): ParsedQuery | null {
  if (buf.length < HEADER_LEN) return null;
  const flags = readFlags(buf);
  if ((flags & FLAG_QR) !== 0 || readQdcount(buf) !== 1) return null;
  const nameStop = nameEnd(buf, HEADER_LEN);
  if (nameStop < 0) return null;
  const qEnd = nameStop + 4;
  if (qEnd > buf.length) return null;
  const qtype = (buf[qEnd - 4]! << 8) | buf[qEnd - 3]!;
  let ednsUdpSize = 0;
  let ednsTtl = 0;
  const arcount = readArcount(buf);
  if (arcount > 0) {
    const opt = findOpt(buf, qEnd, readAncount(buf) + readNscount(buf), arcount);
    if (opt >= 0) {
      ednsUdpSize = (buf[opt + 2]! << 8) | buf[opt + 3]!;
      ednsTtl = buf.readUInt32BE(opt + 4);
    }
  }
  return { id: readId(buf), flags, qtype, qEnd, ednsUdpSize, ednsTtl };
}

/** Offset of the OPT record's TYPE field, or -1. A broken section reads as "no OPT". */
function findOpt(buf: Buffer, start: number, skip: number, arcount: number): number {
  let offset = start;
  for (let i = 0; i < skip + arcount; i++) {
    offset = skipName(buf, offset);
    if (offset < 0 || offset + 10 > buf.length) return -1;
    const type = (buf[offset]! << 8) | buf[offset + 1]!;
    if (i >= skip && type === TYPE_OPT) return offset;
    offset += 10 + ((buf[offset + 8]! << 8) | buf[offset + 9]!);
  }
  return -1;
}

function skipName(buf: Buffer, start: number): number {
  let offset = start;
  while (offset < buf.length) {
    const len = buf[offset]!;
    if (len === 0) return offset + 1;
    if ((len & 0xc0) === 0xc0) return offset + 2;
    if ((len & 0xc0) !== 0) return -1;
    offset += len + 1;
  }
  return -1;
}
