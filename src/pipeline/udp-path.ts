// The UDP packet path, Packet-path steps 1-7, as a sequence of calls: parse, query
// stages, backend, response stages, enforcement. Sockets stay behind the
// UdpReplyTarget and UdpSender interfaces; nothing here is thrown per packet,
// and each entry point (a query, a reply, the sweep) runs inside a fault
// barrier so that whatever was not foreseen drops one unit of work, counted,
// and never the process (docs/hostile-input.md).
import { parseQuery } from '../dns/query.js';
import { readId, writeId } from '../dns/header.js';
import { buildServfail } from '../dns/local-answer.js';
import { replyHeaderProblem, replyQuestionProblem } from '../dns/reply-check.js';
import { proxyV2Header } from '../backend/proxy-protocol.js';
import type { Backend, BackendPool } from '../backend/pool.js';
import type { Family } from '../config/address.js';
import type { PolicyEnv } from '../policy/env.js';
import type { Counters } from '../metrics/counters.js';
import type { QueryContext } from '../policy/context.js';
import { AS_IS, TO_BACKEND, judgeQuery, judgeUdpReply } from './stages.js';
import type { Offender } from '../policy/verdict.js';
import { FaultBarrier } from './barrier.js';
import type { ErrorSink } from '../log/once-per-second.js';

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

const SILENT: ErrorSink = { error: () => undefined };

export class UdpPath {
  private readonly barrier: FaultBarrier;
  /** the sweep's per-entry callback, bound once rather than a closure per sweep */
  private readonly expireBound = (p: PendingUdp): void => this.expire(p);
  private sweepServfail = true;
  /** the clock reading of the batch being handled (beginBatch), or -1 */
  private batchNow = -1;

  constructor(
    private readonly env: PolicyEnv<Counters>,
    private readonly pool: BackendPool<PendingUdp>,
    private readonly onOffender: OffenderHandler,
    private readonly clock: () => number,
    /** where faults are logged, at most once a second */
    errorLog: ErrorSink = SILENT,
  ) {
    this.barrier = new FaultBarrier(env.counters, errorLog);
  }

  /**
   * `address`/`family` are the client as policy sees it; `replyAddress` and `port` where
   * the socket must answer (they differ only for IPv4 clients of a dual-stack socket).
   */
  onQuery(msg: Buffer, address: string, family: Family, replyAddress: string, port: number, target: UdpReplyTarget): void {
    try {
      this.handleQuery(msg, address, family, replyAddress, port, target);
    } catch (err) {
      this.barrier.fault('udp_query', err);
    }
  }

  /**
   * A batch of datagrams read at once (batched UDP, docs/performance.md) is
   * judged at one clock reading, taken here: a reading costs about as much as
   * the rest of a datagram's bookkeeping, and the batch arrived within
   * microseconds. endBatch() goes back to a reading per datagram (dgram).
   */
  beginBatch(): void {
    this.batchNow = this.clock();
  }

  endBatch(): void {
    this.batchNow = -1;
  }

  private now(): number {
    return this.batchNow >= 0 ? this.batchNow : this.clock();
  }

  /** A datagram from a backend's socket: any bytes at all. */
  onReply(backend: Backend<PendingUdp>, reply: Buffer): void {
    this.env.counters.upstreamReplies++;
    try {
      this.handleReply(backend, reply);
    } catch (err) {
      this.barrier.fault('upstream_reply', err);
    }
  }

  /** Expires unanswered queries: SERVFAIL or silence, per backend_timeout_action. */
  sweep(): void {
    try {
      const now = this.clock();
      this.sweepServfail = this.env.settings.backendTimeoutAction === 'servfail';
      for (const backend of this.pool.backends) backend.inflight.sweep(now, this.expireBound);
    } catch (err) {
      this.barrier.fault('sweep', err);
    }
  }

  private handleQuery(msg: Buffer, address: string, family: Family, replyAddress: string, port: number, target: UdpReplyTarget): void {
    const c = this.env.counters;
    c.queries.udp++;
    c.queryBytes.udp += msg.length;
    // Port 0 (or an unspecified address) is never a real client: it can only be
    // spoofed, and a reply to it would throw in send. Dropped before any work.
    if (port === 0 || address === '0.0.0.0' || address === '::') {
      c.dropped.bad_source++;
      return;
    }
    const parsed = parseQuery(msg);
    if (parsed === null) {
      c.dropped.malformed++;
      return;
    }
    const ctx: QueryContext = { query: msg, parsed, clientAddress: address, family, proto: 'udp' };
    const now = this.now();
    const outcome = judgeQuery(ctx, this.env, now);
    if (outcome === null) return;
    if (outcome !== TO_BACKEND) {
      this.send(target, outcome, port, replyAddress);
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
    c.forwarded++;
  }

  private handleReply(backend: Backend<PendingUdp>, reply: Buffer): void {
    const c = this.env.counters;
    const headerProblem = replyHeaderProblem(reply);
    if (headerProblem !== null) {
      c.upstreamRejected[headerProblem]++;
      return;
    }
    const id = readId(reply);
    const pending = backend.inflight.peek(id);
    if (pending === undefined) {
      c.upstreamRejected.unknown_id++; // late (already timed out) or stray
      return;
    }
    const { ctx, port, target, replyAddress } = pending;
    // The question must be the one we sent: a stray datagram cannot complete a query.
    const questionProblem = replyQuestionProblem(reply, ctx.query, ctx.parsed.qEnd);
    if (questionProblem !== null) {
      c.upstreamRejected[questionProblem]++;
      return;
    }
    backend.inflight.take(id);
    const now = this.now();
    backend.observeLatency((now - pending.sentAt) / 1000);
    writeId(reply, ctx.parsed.id);
    const outcome = judgeUdpReply(ctx, reply.length, this.env, now, this.onOffender);
    if (outcome === AS_IS) this.env.realClients?.udpReply(ctx, reply, this.env);
    if (outcome !== null) this.send(target, outcome === AS_IS ? reply : outcome, port, replyAddress);
  }

  /** One expired query; its own barrier, so one failing SERVFAIL does not end the sweep. */
  private expire(p: PendingUdp): void {
    try {
      this.env.counters.dropped.backend_timeout++;
      if (this.sweepServfail) this.send(p.target, buildServfail(p.ctx.query, p.ctx.parsed), p.port, p.replyAddress);
    } catch (err) {
      this.barrier.fault('sweep', err);
    }
  }

  private send(target: UdpReplyTarget, wire: Buffer, port: number, address: string): void {
    const c = this.env.counters;
    c.responses.udp++;
    c.responseBytes.udp += wire.length;
    target.send(wire, port, address);
  }
}
