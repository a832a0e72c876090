// TCP to the backends, shared by every client connection (docs/tcp.md): at most
// tcp.upstream_connections_per_backend connections to each backend, queries of
// many clients pipelined over them with an ID fresh to that connection and
// mapped back to the asking client. So client connections, however many, cannot
// use up the recursor's TCP slots (pdns_recursor max-tcp-clients, 128 by default).
//
// With proxy_protocol, a connection's PROXY v2 header names one client, so a
// connection is kept per client address (the header names the port of the
// connection that opened it), within the same per-backend cap; beyond it an idle
// connection is given up, and with none idle the query fails (pool_full).
// Sockets are behind an UpstreamConnector, so this is tested with fakes.
import type { BackendSpec } from '../config/compile.js';
import type { Counters, TcpUpstreamFailure } from '../metrics/counters.js';
import { readId, writeId } from '../dns/header.js';
import { replyHeaderProblem, replyQuestionProblem } from '../dns/reply-check.js';
import type { UpstreamRejectReason } from '../policy/verdict.js';
import { proxyV2Header } from './proxy-protocol.js';
import type { UpstreamConnector, UpstreamEvents, UpstreamLink } from './upstream-tcp.js';

/** Queries on one connection before another is opened: pdns_recursor's max-concurrent-requests-per-tcp-connection default, beyond which it stops reading that connection. */
export const PIPELINE_DEPTH = 10;
/** An upstream connection with nothing outstanding for this long is closed: before pdns_recursor's own 2 s client-tcp-timeout, so a query is never written into a connection the recursor is closing. */
export const UPSTREAM_IDLE_MS = 1000;

export interface TcpPoolSettings {
  readonly connectionsPerBackend: number;
  readonly connectTimeoutMs: number;
}

/** Who the query is for: the PROXY v2 header of a proxy_protocol backend names it. */
export interface TcpOrigin {
  readonly address: string;
  readonly port: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export type TcpFailure = 'timeout' | TcpUpstreamFailure;

export interface TcpRequest {
  /** the query; its ID is rewritten for the upstream connection */
  readonly query: Buffer;
  /** end of the question section: a reply must repeat query[HEADER_LEN, qEnd) */
  readonly qEnd: number;
  readonly origin: TcpOrigin;
  /** the backend's reply (ID still the upstream one) */
  onAnswer(reply: Buffer): void;
  onFailure(reason: TcpFailure): void;
}

export interface TcpTicket {
  /** the client went away: forget the query, free its ID */
  cancel(): void;
}

/** IDs of one connection: a FIFO free list, O(1), so a just-freed ID is the last to come back (a late reply finds nothing). */
class IdRing {
  private readonly free = new Uint16Array(65536);
  private head = 0;
  private count = 65536;
  constructor() {
    for (let i = 0; i < 65536; i++) this.free[i] = i;
  }
  get available(): number {
    return this.count;
  }
  take(): number {
    const id = this.free[this.head]!;
    this.head = (this.head + 1) & 0xffff;
    this.count--;
    return id;
  }
  give(id: number): void {
    this.free[(this.head + this.count) & 0xffff] = id;
    this.count++;
  }
}

interface Entry {
  readonly request: TcpRequest;
  conn: Connection;
  id: number;
  timer: NodeJS.Timeout;
  retried: boolean;
  done: boolean;
}

class Connection implements UpstreamEvents {
  readonly entries = new Map<number, Entry>();
  readonly ids = new IdRing();
  link: UpstreamLink | null = null;
  connected = false;
  closed = false;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(readonly key: string, private readonly pool: TcpBackendPool) {}

  get load(): number {
    return this.entries.size;
  }

  send(entry: Entry): void {
    this.stopIdle();
    entry.conn = this;
    entry.id = this.ids.take();
    this.entries.set(entry.id, entry);
    writeId(entry.request.query, entry.id);
    this.link?.write(entry.request.query);
  }

  release(entry: Entry): void {
    if (this.entries.get(entry.id) !== entry) return;
    this.entries.delete(entry.id);
    this.ids.give(entry.id);
    if (this.entries.size === 0 && !this.closed) this.startIdle();
  }

  onConnect(): void {
    this.connected = true;
  }

  onReply(reply: Buffer): void {
    // the same checks as a UDP reply, never throwing, each refusal counted (docs/hostile-input.md)
    const header = replyHeaderProblem(reply);
    if (header !== null) return this.pool.rejected(header);
    const entry = this.entries.get(readId(reply));
    if (entry === undefined) return this.pool.rejected('unknown_id');
    const q = entry.request;
    const question = replyQuestionProblem(reply, q.query, q.qEnd);
    if (question !== null) return this.pool.rejected(question);
    this.pool.settle(entry);
    q.onAnswer(reply);
  }

  onClose(failure: Exclude<TcpUpstreamFailure, 'pool_full'> | null): void {
    this.closed = true;
    this.stopIdle();
    this.pool.lost(this, failure);
  }

  close(): void {
    this.stopIdle();
    this.link?.close();
  }

  private startIdle(): void {
    this.idleTimer = setTimeout(() => this.close(), UPSTREAM_IDLE_MS);
    this.idleTimer.unref();
  }

  private stopIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}

/** The TCP connections to one backend. */
export class TcpBackendPool {
  private readonly conns = new Set<Connection>();
  private stopped = false;

  constructor(
    readonly spec: BackendSpec,
    private readonly settings: TcpPoolSettings,
    private readonly connector: UpstreamConnector,
    private readonly counters: Counters,
  ) {}

  get connections(): number {
    return this.conns.size;
  }

  /** a message from the backend that answers nothing we asked */
  rejected(reason: UpstreamRejectReason): void {
    this.counters.upstreamRejected[reason]++;
  }

  /** Sends `request`; its answer or failure comes back through it. Null when it failed at once (pool_full). */
  forward(request: TcpRequest, timeoutMs: number): TcpTicket | null {
    const conn = this.connectionFor(request.origin);
    if (conn === null) {
      this.counters.tcpUpstreamFailures.pool_full++;
      request.onFailure('pool_full');
      return null;
    }
    const entry: Entry = { request, conn, id: -1, timer: setTimeout(() => this.expire(entry), timeoutMs), retried: false, done: false };
    conn.send(entry);
    return { cancel: () => this.settle(entry) };
  }

  /** shutdown: every connection closed, every query failed, nothing re-sent */
  close(): void {
    this.stopped = true;
    for (const c of [...this.conns]) c.close();
  }

  /** the entry is answered, expired or cancelled: free its ID and timer */
  settle(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    entry.conn.release(entry);
  }

  /** a connection ended: its queries are re-sent once (the recursor may close a connection at any time), or fail */
  lost(conn: Connection, failure: Exclude<TcpUpstreamFailure, 'pool_full'> | null): void {
    this.conns.delete(conn);
    if (failure !== null) this.counters.tcpUpstreamFailures[failure]++;
    const orphans = [...conn.entries.values()];
    conn.entries.clear();
    // a connection that never came up is the backend's fault, not a race: fail at once rather than wait twice
    const retry = conn.connected && !this.stopped;
    for (const entry of orphans) {
      if (entry.done) continue;
      if (retry && !entry.retried) {
        const next = this.connectionFor(entry.request.origin);
        if (next !== null) {
          entry.retried = true;
          next.send(entry);
          continue;
        }
      }
      this.fail(entry, failure ?? 'reset');
    }
  }

  private expire(entry: Entry): void {
    this.fail(entry, 'timeout');
  }

  private fail(entry: Entry, reason: TcpFailure): void {
    if (entry.done) return;
    this.settle(entry);
    entry.request.onFailure(reason);
  }

  private connectionFor(origin: TcpOrigin): Connection | null {
    if (this.stopped) return null;
    const key = this.spec.proxyProtocol ? origin.address : '';
    let best: Connection | null = null;
    for (const c of this.conns) {
      if (c.key !== key || c.closed || c.ids.available === 0) continue;
      if (best === null || c.load < best.load) best = c;
    }
    // with PROXY v2 one connection per client address; without, spread to PIPELINE_DEPTH before opening more
    if (best !== null && (this.spec.proxyProtocol || best.load < PIPELINE_DEPTH)) return best;
    if (this.conns.size >= this.settings.connectionsPerBackend && !this.evictIdle()) return best;
    return this.open(key, origin);
  }

  /** frees a slot held by a connection with nothing outstanding (PROXY v2 connections are per client) */
  private evictIdle(): boolean {
    for (const c of this.conns) {
      if (c.load === 0) {
        this.conns.delete(c);
        c.close();
        return true;
      }
    }
    return false;
  }

  private open(key: string, origin: TcpOrigin): Connection {
    const conn = new Connection(key, this);
    this.conns.add(conn);
    const header = this.spec.proxyProtocol ? proxyV2Header('tcp', origin.address, origin.port, origin.localAddress, origin.localPort) : null;
    conn.link = this.connector(this.spec, header, this.settings.connectTimeoutMs, conn);
    return conn;
  }
}

/** The pools of every backend, made on first use. */
export class TcpForwarder {
  private readonly pools = new Map<BackendSpec, TcpBackendPool>();

  constructor(
    private readonly settings: TcpPoolSettings,
    private readonly connector: UpstreamConnector,
    private readonly counters: Counters,
  ) {}

  forward(spec: BackendSpec, request: TcpRequest, timeoutMs: number): TcpTicket | null {
    let pool = this.pools.get(spec);
    if (pool === undefined) {
      pool = new TcpBackendPool(spec, this.settings, this.connector, this.counters);
      this.pools.set(spec, pool);
    }
    return pool.forward(request, timeoutMs);
  }

  /** upstream connections open now, over all backends */
  get connections(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.connections;
    return n;
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
  }
}
