// DNS messages of the client-to-server side of captured TCP connections
// (RFC 7766: a 2-byte length, then the message, split across segments however
// the sender liked). Only in-order bytes are taken: a retransmission is
// skipped, a gap (a segment the capture lost) drops the partial message and
// the stream resynchronises on the next segment. The flow table is bounded;
// the oldest flow makes room for a new one (docs/replay.md).

interface Flow {
  nextSeq: number;
  /** bytes of an unfinished message (length prefix included) */
  pending: Buffer | null;
}

const MAX_MESSAGE = 65_535 + 2;
/** unfinished messages held at once, over all flows: a hostile capture of 65,536 half-sent 64 KiB messages stays at this */
const MAX_PENDING_BYTES = 64 << 20;

export class TcpStreams {
  private readonly flows = new Map<string, Flow>();
  /** flows forgotten to keep the table bounded */
  evicted = 0;
  /** bytes skipped after a gap in a stream (or beyond the bound on unfinished messages) */
  gaps = 0;
  private pendingBytes = 0;

  constructor(private readonly maxFlows: number) {}

  get size(): number {
    return this.flows.size;
  }

  /**
   * One client-to-server segment; calls `onMessage` for each DNS message it
   * completes. `flags` are the TCP flags (SYN opens, FIN/RST close).
   */
  segment(key: string, seq: number, flags: number, payload: Buffer, onMessage: (msg: Buffer) => void): void {
    let flow = this.flows.get(key);
    if (flags & 0x02) {
      // SYN: a new connection; its first data byte is seq + 1
      flow = { nextSeq: (seq + 1) >>> 0, pending: null };
      this.put(key, flow);
      return;
    }
    if (payload.length > 0) {
      if (flow === undefined) {
        // the capture began mid-connection: take this segment as a message boundary
        flow = { nextSeq: seq, pending: null };
        this.put(key, flow);
      }
      const delta = (seq - flow.nextSeq) | 0;
      if (delta < 0) {
        // a retransmission (or overlap): only the part past what was taken is new
        if (-delta >= payload.length) return;
        payload = payload.subarray(-delta);
      } else if (delta > 0) {
        this.gaps += delta;
        this.drop(flow);
      }
      flow.nextSeq = (seq + (delta < 0 ? -delta : 0) + payload.length) >>> 0;
      this.take(flow, payload, onMessage);
    }
    if (flags & 0x05) this.remove(key);
  }

  private drop(flow: Flow): void {
    if (flow.pending !== null) this.pendingBytes -= flow.pending.length;
    flow.pending = null;
  }

  private remove(key: string): void {
    const flow = this.flows.get(key);
    if (flow === undefined) return;
    this.drop(flow);
    this.flows.delete(key);
  }

  private put(key: string, flow: Flow): void {
    this.remove(key);
    if (this.flows.size >= this.maxFlows) {
      this.remove(this.flows.keys().next().value as string);
      this.evicted++;
    }
    this.flows.set(key, flow);
  }

  private take(flow: Flow, data: Buffer, onMessage: (msg: Buffer) => void): void {
    let buf = flow.pending === null ? data : Buffer.concat([flow.pending, data]);
    this.drop(flow);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      // a copy: the capture reader reuses the bytes under `data`
      onMessage(Buffer.from(buf.subarray(2, 2 + len)));
      buf = buf.subarray(2 + len);
    }
    if (buf.length === 0) return;
    if (buf.length > MAX_MESSAGE || this.pendingBytes + buf.length > MAX_PENDING_BYTES) {
      this.gaps += buf.length;
      return;
    }
    flow.pending = Buffer.from(buf);
    this.pendingBytes += buf.length;
  }
}
