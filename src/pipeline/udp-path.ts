// The UDP packet path, Packet-path steps 1-7, as a sequence of calls: parse, query
// stages, backend, response stages, enforcement. Sockets stay behind the
// UdpReplyTarget and UdpSender interfaces; nothing here is thrown per packet.
import { parseQuery } from '../dns/query.js';
import { readId, writeId, HEADER_LEN } from '../dns/header.js';
import { buildServfail } from '../dns/local-answer.js';
import { proxyV2Header } from '../backend/proxy-protocol.js';
import type { Backend, BackendPool } from '../backend/pool.js';
import type { Family } from '../config/address.js';
import type { PolicyEnv } from '../policy/env.js';
import type { QueryContext } from './context.js';
import { runQueryStages, runResponseStages } from './stages.js';
import type { Offender } from './verdict.js';

export interface UdpReplyTarget {
  send(wire: Buffer, port: number, address: string): void;
  readonly localAddress: string;
  readonly localPort: number;
}

/** Decides what happens to an offender's tripping reply: true drops it (Packet-path step 7). */
export type OffenderHandler = (offender: Offender, now: number) => boolean;

export interface PendingUdp {
  readonly ctx: QueryContext;
  /** where the reply goes: the client's address as the socket saw it (IPv4-mapped on a [::] socket) */
  readonly replyAddress: string;
  readonly port: number;
  readonly target: UdpReplyTarget;
  readonly sentAt: number;
}

export class UdpPath {
  constructor(
    private readonly env: PolicyEnv,
    private readonly pool: BackendPool<PendingUdp>,
    private readonly onOffender: OffenderHandler,
    private readonly clock: () => number,
  ) {}

  /**
   * `address`/`family` are the client as policy sees it; `replyAddress` and `port` where
   * the socket must answer (they differ only for IPv4 clients of a dual-stack socket).
   */
  onQuery(msg: Buffer, address: string, family: Family, replyAddress: string, port: number, target: UdpReplyTarget): void {
    const c = this.env.counters;
    c.queries.udp++;
    c.queryBytes.udp += msg.length;
    const parsed = parseQuery(msg);
    if (parsed === null) {
      c.dropped.malformed++;
      return;
    }
    const ctx: QueryContext = { query: msg, parsed, clientAddress: address, family, proto: 'udp' };
    const now = this.clock();
    const verdict = runQueryStages(ctx, this.env, now);
    if (verdict.kind === 'drop') {
      c.dropped[verdict.reason]++;
      return;
    }
    if (verdict.kind === 'answer') {
      c.truncated[verdict.reason]++;
      this.send(target, verdict.wire, port, replyAddress);
      return;
    }
    const backend = this.pool.select();
    const sender = backend.sender;
    const id = sender === null ? -1 : backend.inflight.add({ ctx, replyAddress, port, target, sentAt: now }, now + this.env.settings.backendTimeoutMs);
    if (id < 0 || sender === null) {
      c.dropped.overload++;
      return;
    }
    writeId(msg, id);
    const header = backend.spec.proxyProtocol
      ? proxyV2Header('udp', address, port, target.localAddress, target.localPort)
      : null;
    sender.send(msg, header);
  }

  onReply(backend: Backend<PendingUdp>, reply: Buffer): void {
    if (reply.length < HEADER_LEN) return;
    const id = readId(reply);
    const pending = backend.inflight.peek(id);
    if (pending === undefined) return; // late (already timed out) or stray
    const { ctx, port, target, replyAddress } = pending;
    // The question must be the one we sent: a stray datagram cannot complete a query.
    if (reply.compare(ctx.query, HEADER_LEN, ctx.parsed.qEnd, HEADER_LEN, ctx.parsed.qEnd) !== 0) return;
    backend.inflight.take(id);
    const now = this.clock();
    backend.observeLatency((now - pending.sentAt) / 1000);
    writeId(reply, ctx.parsed.id);
    const verdict = runResponseStages(ctx, reply, this.env, now);
    const c = this.env.counters;
    if (verdict.kind === 'drop') {
      if (verdict.offender === undefined || this.onOffender(verdict.offender, now)) {
        c.dropped[verdict.reason]++;
        return;
      }
      this.send(target, reply, port, replyAddress);
      return;
    }
    if (verdict.kind === 'answer') {
      c.truncated[verdict.reason]++;
      this.send(target, verdict.wire, port, replyAddress);
      return;
    }
    this.send(target, reply, port, replyAddress);
  }

  /** Expires unanswered queries: SERVFAIL or silence, per backend_timeout_action. */
  sweep(): void {
    const now = this.clock();
    const servfail = this.env.settings.backendTimeoutAction === 'servfail';
    for (const backend of this.pool.backends) {
      backend.inflight.sweep(now, (p) => {
        this.env.counters.dropped.backend_timeout++;
        if (servfail) this.send(p.target, buildServfail(p.ctx.query, p.ctx.parsed), p.port, p.replyAddress);
      });
    }
  }

  private send(target: UdpReplyTarget, wire: Buffer, port: number, address: string): void {
    const c = this.env.counters;
    c.responses.udp++;
    c.responseBytes.udp += wire.length;
    target.send(wire, port, address);
  }
}
