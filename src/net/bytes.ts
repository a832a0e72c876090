// A copy of bytes that must outlive the buffer they arrived in (a receive slot
// the next batch reuses, a capture reader's buffer). Buffer.copy checks its
// arguments and makes a view of the source before copying, which costs more
// than copying a short datagram byte by byte (docs/performance.md).
const BYTE_BY_BYTE = 128;

/** bytes [at, at + length) of `from` into `out` from 0; the caller has checked the bounds */
export function copyInto(out: Uint8Array, from: Uint8Array, at: number, length: number): void {
  if (length > BYTE_BY_BYTE) out.set(from.subarray(at, at + length));
  else for (let i = 0; i < length; i++) out[i] = from[at + i]!;
}

/** bytes [at, at + length) of `from`, in a new Buffer of exactly `length` bytes */
export function copyOut(from: Uint8Array, at: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  copyInto(out, from, at, length);
  return out;
}
