// TCP to the backends, shared by every client connection (docs/tcp.md): at most
// tcp.upstream_connections_per_backend connections to each backend (the
// worker's share), queries of many clients pipelined over them with an ID fresh
// to that connection and mapped back to the asking client. So client
// connections, however many, cannot use up the recursor's TCP slots
// (pdns_recursor max-tcp-clients, 128 by default).
//
// No connection carries more than PIPELINE_DEPTH queries: past that the
// recursor stops reading it, and a query written behind a slow one would wait
// for it. A query no connection can carry (every one full, no room for another)
// waits in a queue served round-robin by client prefix (FairQueue), at most
// tcp.upstream_queue_timeout_ms, then fails as pool_full.
//
// With proxy_protocol, a connection's PROXY v2 header names one client, so a
// connection is kept per client address (the header names the port of the
// connection that opened it), a prefix holds at most
// tcp.upstream_connections_per_client of them, and when the cap is reached the
// least recently used idle connection is given up for the new client.
// Sockets are behind an UpstreamConnector, so this is tested with fakes.
import type { BackendSpec } from '../config/compile.js';
import type { Counters, TcpUpstreamFailure } from '../metrics/counters.js';
import { readId, writeId } from '../dns/header.js';
import { replyHeaderProblem, replyQuestionProblem, type UpstreamRejectReason } from '../dns/reply-check.js';
import { FairQueue, type QueueSlot } from './fair-queue.js';
import { IdRing } from './id-ring.js';
import { proxyV2Header } from './proxy-protocol.js';
import type { UpstreamConnector, UpstreamEvents, UpstreamLink } from './upstream-tcp.js';

/** Queries on one connection before another is opened: pdns_recursor's max-concurrent-requests-per-tcp-connection default, beyond which it stops reading that connection. */
export const PIPELINE_DEPTH = 10;
/** An upstream connection with nothing outstanding for this long is closed: before pdns_recursor's own 2 s client-tcp-timeout, so a query is never written into a connection the recursor is closing. */
const UPSTREAM_IDLE_MS = 1000;

export interface TcpForwarderSettings {
  /** this process's share of tcp.upstream_connections_per_backend */
  readonly connectionsPerBackend: number;
  /** tcp.upstream_connections_per_client: PROXY v2 connections one client prefix may hold to a backend */
  readonly connectionsPerClient: number;
  readonly connectTimeoutMs: number;
  /** tcp.upstream_queue_timeout_ms: how long a query may wait for a connection to carry it (0: fail at once) */
  readonly queueTimeoutMs: number;
}

/** Who the query is for: the PROXY v2 header of a proxy_protocol backend names it. */
export interface TcpOrigin {
  readonly address: string;
  readonly port: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** the client's budget prefix (/32, /64 by default): its share of connections and its turn in the queue */
  readonly key: string;
}

export type TcpFailure = 'timeout' | TcpUpstreamFailure;

export interface TcpRequest {
  /** the query; its ID is rewritten for the upstream connection */
  readonly query: Buffer;
  /** end of the question section: a reply must repeat query[HEADER_LEN, qEnd) */
  readonly qEnd: number;
  readonly origin: TcpOrigin;
  /** the backend's reply (ID still the upstream one); never after cancel() */
  onAnswer(reply: Buffer): void;
  onFailure(reason: TcpFailure): void;
  /** the query no longer takes a slot: answered, failed, or cancelled and then answered or expired; once, before onAnswer/onFailure */
  onFinished(): void;
}

export interface TcpTicket {
  /**
   * The client went away: the query is never reported. A waiting one leaves the
   * queue; one at the backend keeps its slot until its answer or deadline, since
   * the backend is still working on it (freeing the slot would write the next
   * query behind it, and a client that closes and reconnects would escape its share).
   */
  cancel(): void;
}

interface Entry {
  readonly request: TcpRequest;
  /** the connection carrying it; null while it waits in the queue */
  conn: Connection | null;
  id: number;
  /** the whole deadline (backend_timeout_ms), queue wait included */
  timer: NodeJS.Timeout;
  /** the queue deadline, while it waits */
  queueTimer: NodeJS.Timeout | null;
  /** its place in the queue, while it waits */
  slot: QueueSlot<Entry> | null;
  retried: boolean;
  /** the client went away: finish silently */
  cancelled: boolean;
  done: boolean;
}

class Connection implements UpstreamEvents {
  readonly entries = new Map<number, Entry>();
  /** IDs in sequence (nobody off-path sees them), a freed one back only after every other free ID, so a late reply finds nothing */
  private readonly ids = new IdRing();
  link: UpstreamLink | null = null;
  connected = false;
  closed = false;
  /** when a query last went out on it, in sends of its pool: the least recently used idle one is given up first */
  lastUsed = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  /** `key`: who may use it (a client address with PROXY v2, '' for all); `prefix`: whose share it counts in */
  constructor(readonly key: string, readonly prefix: string, private readonly pool: BackendConnections) {}

  get load(): number {
    return this.entries.size;
  }

  /** room for another query without writing it behind more than the backend works on at once */
  get hasRoom(): boolean {
    return !this.closed && this.entries.size < PIPELINE_DEPTH;
  }

  send(entry: Entry, seq: number): void {
    this.stopIdle();
    this.lastUsed = seq;
    entry.conn = this;
    entry.id = this.ids.take();
    this.entries.set(entry.id, entry);
    writeId(entry.request.query, entry.id);
    this.link?.write(entry.request.query);
  }

  release(entry: Entry): void {
    if (this.entries.get(entry.id) !== entry) return;
    this.entries.delete(entry.id);
    this.ids.release(entry.id);
    if (this.entries.size === 0 && !this.closed) this.startIdle();
    this.pool.drain();
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
    this.pool.finish(entry);
    if (!entry.cancelled) q.onAnswer(reply);
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

/** The TCP connections to one backend, and the queries waiting for one. */
export class BackendConnections {
  private readonly conns = new Set<Connection>();
  private readonly queue = new FairQueue<Entry>();
  private stopped = false;
  private draining = false;
  private seq = 0;

  constructor(
    readonly spec: BackendSpec,
    private readonly settings: TcpForwarderSettings,
    private readonly connector: UpstreamConnector,
    private readonly counters: Counters,
  ) {}

  get connections(): number {
    return this.conns.size;
  }

  /** queries waiting for a connection now */
  get queued(): number {
    return this.queue.size;
  }

  /** a message from the backend that answers nothing we asked */
  rejected(reason: UpstreamRejectReason): void {
    this.counters.upstreamRejected[reason]++;
  }

  /** Sends `request`, or queues it until a connection can carry it; its answer or failure comes back through it. Null when it failed at once. */
  forward(request: TcpRequest, timeoutMs: number): TcpTicket | null {
    const entry: Entry = { request, conn: null, id: -1, timer: setTimeout(() => this.expire(entry), timeoutMs), queueTimer: null, slot: null, retried: false, cancelled: false, done: false };
    this.dispatch(entry);
    if (entry.done) return null;
    return { cancel: () => this.cancel(entry) };
  }

  /** shutdown: every connection closed, every query failed, nothing re-sent */
  close(): void {
    this.stopped = true;
    for (const c of [...this.conns]) c.close();
    for (const [key] of this.queue.heads()) {
      for (let e = this.queue.take(key); e !== undefined; e = this.queue.take(key)) {
        e.slot = null;
        this.fail(e, 'pool_full');
      }
    }
  }

  /** the entry is answered, failed, or cancelled while waiting: free its ID (or its place in the queue) and timers */
  finish(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    clearTimeout(entry.timer);
    this.unqueue(entry);
    entry.conn?.release(entry);
    entry.request.onFinished();
  }

  private cancel(entry: Entry): void {
    if (entry.done) return;
    entry.cancelled = true;
    if (entry.conn === null) this.finish(entry);
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
      entry.conn = null;
      if (entry.cancelled) {
        this.finish(entry);
        continue;
      }
      if (retry && !entry.retried) {
        entry.retried = true;
        this.dispatch(entry);
        continue;
      }
      this.fail(entry, failure ?? 'reset');
    }
    // its slot is free: a waiting query may take it
    this.drain();
  }

  /** Hands waiting queries to connections that can carry them, one prefix at a time in turn. */
  drain(): void {
    if (this.draining || this.queue.size === 0 || this.stopped) return;
    this.draining = true;
    try {
      let progress = true;
      while (progress && this.queue.size > 0) {
        progress = false;
        for (const [key, entry] of this.queue.heads()) {
          const conn = this.connectionFor(entry.request.origin);
          if (conn === null) continue;
          this.queue.take(key);
          entry.slot = null;
          this.unqueue(entry);
          conn.send(entry, ++this.seq);
          progress = true;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private dispatch(entry: Entry): void {
    const conn = this.connectionFor(entry.request.origin);
    if (conn !== null) return conn.send(entry, ++this.seq);
    if (this.stopped || this.settings.queueTimeoutMs === 0) return this.fail(entry, 'pool_full');
    entry.queueTimer = setTimeout(() => this.fail(entry, 'pool_full'), this.settings.queueTimeoutMs);
    entry.slot = this.queue.push(entry.request.origin.key, entry);
  }

  /** the entry waits no more: its queue deadline and its place go */
  private unqueue(entry: Entry): void {
    if (entry.queueTimer !== null) clearTimeout(entry.queueTimer);
    entry.queueTimer = null;
    if (entry.slot !== null) this.queue.remove(entry.slot);
    entry.slot = null;
  }

  private expire(entry: Entry): void {
    // still waiting at its deadline: it never had a connection
    this.fail(entry, entry.queueTimer !== null ? 'pool_full' : 'timeout');
  }

  private fail(entry: Entry, reason: TcpFailure): void {
    if (entry.done) return;
    this.finish(entry);
    if (entry.cancelled) return;
    if (reason === 'pool_full') this.counters.tcpUpstreamFailures.pool_full++;
    entry.request.onFailure(reason);
  }

  /** a connection with room for a query of `origin`, opened if need be; null when none can be had now */
  private connectionFor(origin: TcpOrigin): Connection | null {
    if (this.stopped) return null;
    const key = this.spec.proxyProtocol ? origin.address : '';
    let best: Connection | null = null;
    for (const c of this.conns) {
      if (c.key !== key || !c.hasRoom) continue;
      if (best === null || c.load < best.load) best = c;
    }
    if (best !== null) return best;
    // a PROXY v2 connection serves one address: a prefix's addresses hold at most their share of the connections
    if (this.spec.proxyProtocol && this.connectionsOf(origin.key) >= this.settings.connectionsPerClient && !this.evictIdle(origin.key)) return null;
    if (this.conns.size >= this.settings.connectionsPerBackend && !this.evictIdle(null)) return null;
    return this.open(key, origin);
  }

  private connectionsOf(prefix: string): number {
    let n = 0;
    for (const c of this.conns) if (c.prefix === prefix) n++;
    return n;
  }

  /** gives up the least recently used connection with nothing outstanding (of `prefix`, or any); false when none is idle */
  private evictIdle(prefix: string | null): boolean {
    let lru: Connection | null = null;
    for (const c of this.conns) {
      if (c.load !== 0 || c.closed || (prefix !== null && c.prefix !== prefix)) continue;
      if (lru === null || c.lastUsed < lru.lastUsed) lru = c;
    }
    if (lru === null) return false;
    this.conns.delete(lru);
    lru.close();
    return true;
  }

  private open(key: string, origin: TcpOrigin): Connection {
    const conn = new Connection(key, origin.key, this);
    this.conns.add(conn);
    const header = this.spec.proxyProtocol ? proxyV2Header('tcp', origin.address, origin.port, origin.localAddress, origin.localPort) : null;
    conn.link = this.connector(this.spec, header, this.settings.connectTimeoutMs, conn);
    return conn;
  }
}

/** The pools of every backend, made on first use. */
export class TcpForwarder {
  private readonly pools = new Map<BackendSpec, BackendConnections>();

  constructor(
    private readonly settings: TcpForwarderSettings,
    private readonly connector: UpstreamConnector,
    private readonly counters: Counters,
  ) {}

  forward(spec: BackendSpec, request: TcpRequest, timeoutMs: number): TcpTicket | null {
    let pool = this.pools.get(spec);
    if (pool === undefined) {
      pool = new BackendConnections(spec, this.settings, this.connector, this.counters);
      this.pools.set(spec, pool);
    }
    return pool.forward(request, timeoutMs);
  }

  /** queries waiting for an upstream connection now, over all backends */
  get queued(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.queued;
    return n;
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
