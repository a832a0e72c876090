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

export class TcpStreams {
  private readonly flows = new Map<string, Flow>();
  /** flows forgotten to keep the table bounded */
  evicted = 0;
  /** bytes skipped after a gap in a stream */
  gaps = 0;

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
        flow.pending = null;
      }
      flow.nextSeq = (seq + (delta < 0 ? -delta : 0) + payload.length) >>> 0;
      this.take(flow, payload, onMessage);
    }
    if (flags & 0x05) this.flows.delete(key);
  }

  private put(key: string, flow: Flow): void {
    this.flows.delete(key);
    if (this.flows.size >= this.maxFlows) {
      const oldest = this.flows.keys().next().value as string;
      this.flows.delete(oldest);
      this.evicted++;
    }
    this.flows.set(key, flow);
  }

  private take(flow: Flow, data: Buffer, onMessage: (msg: Buffer) => void): void {
    let buf = flow.pending === null ? data : Buffer.concat([flow.pending, data]);
    flow.pending = null;
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      // a copy: the capture reader reuses the bytes under `data`
      onMessage(Buffer.from(buf.subarray(2, 2 + len)));
      buf = buf.subarray(2 + len);
    }
    if (buf.length > 0 && buf.length <= MAX_MESSAGE) flow.pending = Buffer.from(buf);
  }
}
