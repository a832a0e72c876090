// Packet-path step 9 — the queries of one client TCP connection: pipelined, answered
// out of order, forwarded over one TCP connection to a backend (opened on the
// first query, so a PROXY v2 header can name this client), never truncated and
// never charged to a budget. Reads backend_timeout_*, tcp.max_in_flight_per_connection.
import { parseQuery } from '../dns/query.js';
import { readId, writeId, HEADER_LEN } from '../dns/header.js';
import { buildServfail } from '../dns/local-answer.js';
import { proxyV2Header } from '../backend/proxy-protocol.js';
import type { BackendPool } from '../backend/pool.js';
import type { UpstreamHandlers, UpstreamStream } from '../backend/upstream-tcp.js';
import type { BackendSpec } from '../config/compile.js';
import type { Family } from '../config/address.js';
import type { PolicyEnv } from '../policy/env.js';
import type { QueryContext } from './context.js';
import { runQueryStages } from './stages.js';

export interface TcpClient {
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  readonly localAddress: string;
  readonly localPort: number;
  write(message: Buffer): void;
  pause(): void;
  resume(): void;
}

export type UpstreamConnector = (backend: BackendSpec, proxyHeader: Buffer | null, handlers: UpstreamHandlers) => UpstreamStream;

interface PendingTcp {
  readonly ctx: QueryContext;
  readonly timer: NodeJS.Timeout;
}

export class TcpSession implements UpstreamHandlers {
  private upstream: UpstreamStream | null = null;
  private readonly pending = new Map<number, PendingTcp>();
  private nextId = Math.floor(Math.random() * 65536);
  private paused = false;

  constructor(
    private readonly client: TcpClient,
    private readonly env: PolicyEnv,
    private readonly pool: BackendPool<unknown>,
    private readonly connect: UpstreamConnector,
    private readonly maxInFlight: number,
    private readonly clock: () => number,
  ) {}

  get outstanding(): number {
    return this.pending.size;
  }

  onQuery(msg: Buffer): void {
    const c = this.env.counters;
    c.queries.tcp++;
    c.queryBytes.tcp += msg.length;
    const parsed = parseQuery(msg);
    if (parsed === null) {
      c.dropped.malformed++;
      return;
    }
    const ctx: QueryContext = {
      query: msg, parsed, clientAddress: this.client.address, family: this.client.family, proto: 'tcp',
    };
    const verdict = runQueryStages(ctx, this.env, this.clock());
    if (verdict.kind === 'drop') {
      c.dropped[verdict.reason]++;
      return;
    }
    if (verdict.kind === 'answer') {
      c.truncated[verdict.reason]++;
      this.reply(verdict.wire);
      return;
    }
    const upstream = this.upstream ?? this.openUpstream();
    const id = this.allocateId();
    writeId(msg, id);
    const timer = setTimeout(() => this.expire(id), this.env.settings.backendTimeoutMs);
    this.pending.set(id, { ctx, timer });
    upstream.write(msg);
    if (this.pending.size >= this.maxInFlight && !this.paused) {
      this.paused = true;
      this.client.pause();
    }
  }

  onReply(reply: Buffer): void {
    if (reply.length < HEADER_LEN) return;
    const id = readId(reply);
    const p = this.pending.get(id);
    if (p === undefined) return;
    if (reply.compare(p.ctx.query, HEADER_LEN, p.ctx.parsed.qEnd, HEADER_LEN, p.ctx.parsed.qEnd) !== 0) return;
    this.settle(id, p);
    writeId(reply, p.ctx.parsed.id);
    this.reply(reply);
  }

  onClose(): void {
    this.upstream = null;
    for (const [id, p] of this.pending) this.fail(id, p);
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    const upstream = this.upstream;
    this.upstream = null;
    upstream?.close();
  }

  private openUpstream(): UpstreamStream {
    const backend = this.pool.select();
    const c = this.client;
    const header = backend.spec.proxyProtocol ? proxyV2Header('tcp', c.address, c.port, c.localAddress, c.localPort) : null;
    this.upstream = this.connect(backend.spec, header, this);
    return this.upstream;
  }

  private allocateId(): number {
    // pending.size < 65536 (capped by max_in_flight_per_connection), so this ends.
    do this.nextId = (this.nextId + 1) & 0xffff;
    while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private expire(id: number): void {
    const p = this.pending.get(id);
    if (p) this.fail(id, p);
  }

  private fail(id: number, p: PendingTcp): void {
    this.settle(id, p);
    this.env.counters.dropped.backend_timeout++;
    if (this.env.settings.backendTimeoutAction === 'servfail') this.reply(buildServfail(p.ctx.query, p.ctx.parsed));
  }

  private settle(id: number, p: PendingTcp): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (this.paused && this.pending.size < this.maxInFlight) {
      this.paused = false;
      this.client.resume();
    }
  }

  private reply(wire: Buffer): void {
    this.env.counters.responses.tcp++;
    this.env.counters.responseBytes.tcp += wire.length;
    this.client.write(wire);
  }
}
