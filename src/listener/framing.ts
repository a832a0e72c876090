// DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): a two-byte length, then the
// message. Pure: chunks in, whole messages out, however the bytes were split.

export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

export class FrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly maxMessage: number) {}

  /** true while part of a message has arrived and the rest has not */
  get partial(): boolean {
    return this.pending !== null && this.pending.length > 0;
  }

  /** Whole messages completed by `chunk`, or null when the stream is broken (zero or oversize length). */
  push(chunk: Buffer): Buffer[] | null {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len === 0 || len > this.maxMessage) return null;
      if (buf.length < len + 2) break;
      out.push(buf.subarray(2, len + 2));
      buf = buf.subarray(len + 2);
    }
    this.pending = buf.length > 0 ? Buffer.from(buf) : null;
    return out;
  }
}
