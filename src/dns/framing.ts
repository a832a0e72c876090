// DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): a two-byte length, then the
// message. Pure: chunks in, whole messages out, however the bytes were split.
// Messages are pulled one at a time (next()), so a caller can stop at its
// in-flight cap and leave the rest buffered; `buffered` tells it how much is
// waiting, so it can stop reading the socket while that is too much.

export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

export class FrameReader {
  /** received chunks not yet consumed; the first starts at `offset` */
  private readonly chunks: Buffer[] = [];
  private offset = 0;
  private total = 0;
  private isBroken = false;

  constructor(private readonly maxMessage: number) {}

  /** bytes received and not yet returned as messages */
  get buffered(): number {
    return this.total;
  }

  /** true once a zero or oversize length was seen: the stream cannot be resynchronised */
  get broken(): boolean {
    return this.isBroken;
  }

  /**
   * true while the next message has started to arrive and is not complete (what a
   * read timeout measures); whole messages waiting for the caller are not partial.
   */
  get partial(): boolean {
    if (this.total === 0 || this.isBroken) return false;
    if (this.total < 2) return true;
    return this.total < 2 + this.peekLength();
  }

  append(chunk: Buffer): void {
    if (this.isBroken || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The next whole message (a view into the received bytes), or null when none is complete or the stream is broken. */
  next(): Buffer | null {
    if (this.isBroken || this.total < 2) return null;
    const len = this.peekLength();
    if (len === 0 || len > this.maxMessage) {
      this.isBroken = true;
      this.chunks.length = 0;
      this.total = 0;
      return null;
    }
    if (this.total < 2 + len) return null;
    const head = this.coalesce(2 + len);
    const message = head.subarray(this.offset + 2, this.offset + 2 + len);
    this.consume(2 + len);
    return message;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= 2) return first.readUInt16BE(this.offset);
    return this.coalesce(2).readUInt16BE(this.offset);
  }

  /**
   * Makes the first chunk hold at least `n` bytes from `offset`, joining only as
   * many chunks as that takes: each byte is copied at most once per message, so
   * a message trickled in one byte at a time costs linear, not quadratic, work.
   */
  private coalesce(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= n) return first;
    let have = first.length - this.offset;
    let count = 1;
    while (have < n) have += this.chunks[count++]!.length;
    const joined = Buffer.concat([first.subarray(this.offset), ...this.chunks.slice(1, count)]);
    this.chunks.splice(0, count, joined);
    this.offset = 0;
    return joined;
  }

  private consume(n: number): void {
    this.total -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      const left = first.length - this.offset;
      if (left > n) {
        this.offset += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.offset = 0;
    }
  }
}
