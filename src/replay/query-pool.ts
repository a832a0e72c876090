// Buffers for the copies of UDP queries that wait for their replies. A copy is
// needed (the capture reader reuses its buffer), and V8 takes about 100 ns to
// make any typed array, small or not: a tenth of a packet's time in the replay
// (docs/replay.md, speed). So a copy that no runner holds any more goes back
// to a free list of its length and serves a later query of that length. The
// lists are bounded in count, and only short buffers are kept.
import { copyInto } from '../net/bytes.js';

const MAX_POOLED_LENGTH = 512;
const MAX_FREE = 65_536;

export class QueryPool {
  private readonly free: Buffer[][] = Array.from({ length: MAX_POOLED_LENGTH + 1 }, () => []);
  private freeCount = 0;

  /** bytes [at, at + length) of `from`, in a buffer of exactly `length` bytes */
  copy(from: Buffer, at: number, length: number): Buffer {
    let out: Buffer | undefined;
    if (length <= MAX_POOLED_LENGTH) {
      out = this.free[length]!.pop();
      if (out !== undefined) this.freeCount--;
    }
    out ??= Buffer.allocUnsafe(length);
    copyInto(out, from, at, length);
    return out;
  }

  /** Takes back a copy that nothing refers to any more. */
  give(buf: Buffer): void {
    if (buf.length > MAX_POOLED_LENGTH || this.freeCount >= MAX_FREE) return;
    this.free[buf.length]!.push(buf);
    this.freeCount++;
  }
}
