// Fixed-offset reads and writes of the 12-byte DNS header (RFC 1035 4.1.1),
// so the hot path never decodes a whole message.
export const HEADER_LEN = 12;
export const FLAG_QR = 0x8000;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const OPCODE_MASK = 0x7800;
const RCODE_MASK = 0x000f;
export const RCODE_SERVFAIL = 2;
export const RCODE_NOTIMP = 4;
/** the standard query; every other opcode (IQUERY, STATUS, NOTIFY, UPDATE, DSO) is answered NOTIMP */
export const OPCODE_QUERY = 0;
export const TYPE_OPT = 41;
export const TYPE_ANY = 255;

export const readId = (buf: Buffer): number => (buf[0]! << 8) | buf[1]!;
export const readFlags = (buf: Buffer): number => (buf[2]! << 8) | buf[3]!;
export const readOpcode = (flags: number): number => (flags & OPCODE_MASK) >>> 11;
export const readRcode = (buf: Buffer): number => buf[3]! & RCODE_MASK;
export const readQdcount = (buf: Buffer): number => (buf[4]! << 8) | buf[5]!;
export const readAncount = (buf: Buffer): number => (buf[6]! << 8) | buf[7]!;
export const readNscount = (buf: Buffer): number => (buf[8]! << 8) | buf[9]!;
export const readArcount = (buf: Buffer): number => (buf[10]! << 8) | buf[11]!;

export function writeId(buf: Buffer, id: number): void {
  buf[0] = id >>> 8;
  buf[1] = id & 0xff;
}
