// DNS messages of captured TCP connections, in both directions (RFC 7766: a
// 2-byte length, then the message, split across segments however the sender
// liked). Only in-order bytes are taken: a retransmission is skipped. Where a
// message starts is known after a SYN; a connection the capture picked up
// mid-way, or one that lost a segment (a gap), is resynchronised on the first
// plausible length prefix: a length of at least a header, followed by a header
// that reads as a query (or, from the server, an answer) with one question
// whose name walks to its end. The bytes passed over to find it are counted.
// The flow table is bounded; the oldest flow makes room for a new one
// (docs/replay.md).
import { nameEnd } from '../dns/name.js';
import { HEADER_LEN } from '../dns/header.js';
import { TCP_FIN, TCP_RST, TCP_SYN } from './packet.js';

interface Flow {
  nextSeq: number;
  /** bytes not yet taken as messages (from a length prefix on, when in step), each segment copied once */
  pending: Buffer[];
  pendingLen: number;
  /**
   * bytes pending must reach before they are looked at again: the whole
   * message (or candidate) whose length prefix they start with, so a message
   * trickled in a byte per segment is joined once, not once per segment
   */
  need: number;
  /** whether the next byte taken starts a length prefix (after a SYN, or once resynchronised) */
  inStep: boolean;
  /** answers (server to client) or queries */
  readonly answers: boolean;
}

const MAX_MESSAGE = 65_535 + 2;
/** unfinished messages held at once, over all flows: a hostile capture of 65,536 half-sent 64 KiB messages stays at this */
const MAX_PENDING_BYTES = 64 << 20;
/** a length prefix, a header and the shortest question (root name, type, class) */
const MIN_FRAMED = 2 + HEADER_LEN + 5;

/**
 * Whether `b[at..]` starts like a DNS message of the right direction: QR,
 * opcode QUERY, one question, and (for a query) no answer or authority
 * records. `end` is where the bytes known so far stop (the name is walked
 * only within them; a name running past `end` does not disqualify).
 */
function plausible(b: Buffer, at: number, end: number, answers: boolean): boolean {
  if (at + HEADER_LEN > end) return false;
  const qr = (b[at + 2]! & 0x80) !== 0;
  if (qr !== answers || (b[at + 2]! & 0x78) !== 0) return false;
  if (b[at + 4] !== 0 || b[at + 5] !== 1) return false;
  if (!answers && (b[at + 6] !== 0 || b[at + 7] !== 0 || b[at + 8] !== 0 || b[at + 9] !== 0)) return false;
  return true;
}

/** The question of a complete candidate message `b[at, at + len)` walks to its end. */
function questionFits(b: Buffer, at: number, len: number): boolean {
  const msg = b.subarray(at, at + len);
  const stop = nameEnd(msg, HEADER_LEN);
  return stop > 0 && stop + 4 <= len;
}

export class TcpStreams {
  private readonly flows = new Map<string, Flow>();
  /** bytes the capture lacks in a stream (a segment it lost), or beyond the bound on unfinished messages */
  gaps = 0;
  /** bytes passed over to find a message boundary in a stream picked up mid-way or after a gap */
  resyncSkipped = 0;
  /** streams picked up without their SYN */
  midStream = 0;
  private pendingBytes = 0;

  constructor(private readonly maxFlows: number) {}

  get size(): number {
    return this.flows.size;
  }

  /**
   * One segment of a flow; calls `onMessage` with each DNS message it
   * completes (a view, valid during the call). `flags` are the TCP flags (SYN
   * opens, FIN/RST close); `answers` says the flow runs from the server.
   */
  segment(key: string, seq: number, flags: number, payload: Buffer, answers: boolean, onMessage: (msg: Buffer) => void): void {
    let flow = this.flows.get(key);
    if (flags & TCP_SYN) {
      // SYN: a new connection; its first data byte is seq + 1, and starts a message
      flow = { nextSeq: (seq + 1) >>> 0, pending: [], pendingLen: 0, need: 0, inStep: true, answers };
      this.put(key, flow);
      return;
    }
    if (payload.length > 0) {
      if (flow === undefined) {
        // the capture began mid-connection: where a message starts is to be found
        flow = { nextSeq: seq, pending: [], pendingLen: 0, need: 0, inStep: false, answers };
        this.midStream++;
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
        flow.inStep = false;
      }
      flow.nextSeq = (seq + (delta < 0 ? -delta : 0) + payload.length) >>> 0;
      this.take(flow, payload, onMessage);
    }
    if (flags & (TCP_FIN | TCP_RST)) this.remove(key);
  }

  private drop(flow: Flow): void {
    this.pendingBytes -= flow.pendingLen;
    flow.pending = [];
    flow.pendingLen = 0;
    flow.need = 0;
  }

  private remove(key: string): void {
    const flow = this.flows.get(key);
    if (flow === undefined) return;
    this.drop(flow);
    this.flows.delete(key);
  }

  private put(key: string, flow: Flow): void {
    this.remove(key);
    if (this.flows.size >= this.maxFlows) this.remove(this.flows.keys().next().value as string);
    this.flows.set(key, flow);
  }

  /**
   * Out of step: the offset of the first plausible length prefix in `buf`
   * whose message is complete and walks, or (-1 - offset) of one that is
   * plausible but not complete yet (wait for more bytes from there), or
   * -1 - max(0, length - MIN_FRAMED + 1) when none is: the tail kept may still
   * hold the start of one.
   */
  private findStep(buf: Buffer, answers: boolean): number {
    let p = 0;
    for (; p + MIN_FRAMED <= buf.length; p++) {
      const len = (buf[p]! << 8) | buf[p + 1]!;
      if (len < HEADER_LEN + 5 || !plausible(buf, p + 2, buf.length, answers)) continue;
      if (p + 2 + len > buf.length) return -1 - p;
      if (questionFits(buf, p + 2, len)) return p;
    }
    return -1 - p;
  }

  private take(flow: Flow, data: Buffer, onMessage: (msg: Buffer) => void): void {
    if (flow.pendingLen > 0 && flow.pendingLen + data.length < flow.need) {
      // still short of the message the pending bytes start: kept (a copy: the capture's buffer is reused), not looked at
      if (this.pendingBytes + data.length > MAX_PENDING_BYTES) {
        this.gaps += flow.pendingLen + data.length;
        this.drop(flow);
        flow.inStep = false;
        return;
      }
      flow.pending.push(Buffer.from(data));
      flow.pendingLen += data.length;
      this.pendingBytes += data.length;
      return;
    }
    let buf = flow.pendingLen === 0 ? data : Buffer.concat([...flow.pending, data]);
    this.drop(flow);
    let need = 0;
    for (;;) {
      if (!flow.inStep) {
        const at = this.findStep(buf, flow.answers);
        const skip = at >= 0 ? at : -1 - at;
        this.resyncSkipped += skip;
        buf = buf.subarray(skip);
        if (at < 0) {
          // a plausible candidate waits for its whole message; else any next byte may complete one
          need = buf.length >= MIN_FRAMED ? 2 + ((buf[0]! << 8) | buf[1]!) : buf.length + 1;
          break;
        }
        flow.inStep = true;
      }
      if (buf.length < 2) {
        need = 2;
        break;
      }
      const len = (buf[0]! << 8) | buf[1]!;
      if (len < HEADER_LEN) {
        // no DNS message is this short: the stream is not where we thought
        flow.inStep = false;
        this.resyncSkipped += 1;
        buf = buf.subarray(1);
        continue;
      }
      if (buf.length < 2 + len) {
        need = 2 + len;
        break;
      }
      onMessage(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
    }
    if (buf.length === 0) return;
    if (buf.length > MAX_MESSAGE || this.pendingBytes + buf.length > MAX_PENDING_BYTES) {
      this.gaps += buf.length;
      flow.inStep = false;
      return;
    }
    flow.pending = [Buffer.from(buf)];
    flow.pendingLen = buf.length;
    flow.need = need;
    this.pendingBytes += buf.length;
  }
}
