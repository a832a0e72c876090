// TCP listen sockets: connection caps (total, and per client prefix), idle and
// read timeouts, framing, and flow control in both directions (docs/tcp.md):
// messages are handed to the connection's TcpSession one at a time, never more
// than tcp.max_in_flight_per_connection outstanding and never past the client
// prefix's share of queries in flight (tcp.max_in_flight_per_client); reading stops while
// messages wait or answers are not draining; a client whose unread answers pass
// tcp.max_buffered_bytes is closed.
import net from 'node:net';
import type { Logger } from 'pino';
import type { Family, HostPort } from '../config/address.js';
import type { Config } from '../config/schema.js';
import type { Counters, TcpCloseReason } from '../metrics/counters.js';
import { FrameReader, frame } from '../dns/framing.js';
import { unmapIpv4 } from './mapped.js';
import type { TcpClient, TcpSession } from '../pipeline/tcp-session.js';
import { bindError } from '../net/bind-error.js';
import { LogBudget } from '../log/rate-limited.js';

export type SessionFactory = (client: TcpClient) => TcpSession;
/** the key a client's connections are counted under: its budget prefix (/32, /64 by default) */
export type ClientKey = (address: string, family: Family) => string;

const MAX_MESSAGE = 65_535;
/**
 * Received bytes kept beyond what is being processed: more than one whole
 * message, so an incomplete message at the head never stops reading (it would
 * wait forever), and little enough that a pipelining client costs at most this
 * plus one socket read while its queries wait for in-flight room.
 */
const READ_AHEAD = MAX_MESSAGE + 2;
/** at most one log line a second for connections closed on an unexpected error */
const ERROR_LOG_INTERVAL_MS = 1000;

/** Connection counts shared by every TCP listener, so the caps are process-wide. */
export class ConnectionLimits {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(private readonly settings: Pick<Config['tcp'], 'max_connections' | 'max_connections_per_client'>) {}

  get open(): number {
    return this.total;
  }

  /** `key`: the client's prefix key (ClientKey), so one /64 counts as one client */
  tryOpen(key: string): boolean {
    const mine = this.perClient.get(key) ?? 0;
    if (this.total >= this.settings.max_connections || mine >= this.settings.max_connections_per_client) return false;
    this.total++;
    this.perClient.set(key, mine + 1);
    return true;
  }

  close(key: string): void {
    this.total--;
    const mine = (this.perClient.get(key) ?? 1) - 1;
    if (mine <= 0) this.perClient.delete(key);
    else this.perClient.set(key, mine);
  }
}

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly errorLines = new LogBudget(1, ERROR_LOG_INTERVAL_MS);

  constructor(
    readonly address: HostPort,
    private readonly settings: Config['tcp'],
    private readonly limits: ConnectionLimits,
    private readonly clientKey: ClientKey,
    private readonly counters: Counters,
    private readonly newSession: SessionFactory,
    private readonly log: Logger,
  ) {
    // allowHalfOpen: a client may shut down its sending side after its last query and still read the answers.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.log.warn({ err: err.message }, 'tcp listener error'));
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => reject(bindError(err, 'tcp', this.address));
      this.server.once('error', failed);
      this.server.listen({ port: this.address.port, host: this.address.host, backlog: 1024 }, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    // a connection that is reset before we look at it has no address: nothing to serve
    socket.on('error', () => socket.destroy());
    const raw = socket.remoteAddress;
    if (raw === undefined) return void socket.destroy();
    const v4 = unmapIpv4(raw);
    const address = v4 ?? raw;
    const family: Family = v4 !== null || socket.remoteFamily !== 'IPv6' ? 4 : 6;
    const key = this.clientKey(address, family);
    if (!this.limits.tryOpen(key)) {
      this.counters.dropped.overload++;
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);

    const maxInFlight = this.settings.max_in_flight_per_connection;
    const maxBuffered = this.settings.max_buffered_bytes;
    const reader = new FrameReader(MAX_MESSAGE);
    let readTimer: NodeJS.Timeout | null = null;
    let writeBlocked = false;
    let ended = false;
    let endSent = false;
    let closed = false;
    let pumping = false;

    const close = (reason: TcpCloseReason | null): void => {
      if (closed) return;
      closed = true;
      if (reason !== null) this.counters.tcpClosed[reason]++;
      if (readTimer) clearTimeout(readTimer);
      session.close();
      socket.destroy();
      this.sockets.delete(socket);
      this.limits.close(key);
    };

    const client: TcpClient = {
      address,
      port: socket.remotePort ?? 0,
      family,
      key,
      localAddress: socket.localAddress ?? this.address.host,
      localPort: socket.localPort ?? this.address.port,
      write: (message) => {
        if (closed) return;
        const drained = socket.write(frame(message));
        // a client that does not read its answers costs us memory: only so much, then it goes
        if (socket.writableLength > maxBuffered) return close('buffer_full');
        if (!drained) writeBlocked = true;
      },
      settled: () => pump(),
    };
    const session = this.newSession(client);

    // Hands waiting messages to the session while it has in-flight room and the
    // client drains its answers, then decides whether to read more.
    const pump = (): void => {
      if (closed || pumping) return;
      pumping = true;
      let handed = 0;
      try {
        // mayForward last: it registers for a wake-up only when the prefix's share is all that stops us
        while (!closed && !writeBlocked && session.outstanding < maxInFlight && session.mayForward()) {
          const m = reader.next();
          if (m === null) break;
          // a copy: the query outlives the read buffer it came in (until answered), and must not pin it
          session.onQuery(Buffer.from(m));
          handed++;
        }
      } catch (err) {
        this.logError(err);
        return close('internal_error');
      } finally {
        pumping = false;
      }
      if (closed) return;
      if (reader.broken) return close('framing');
      // Read timeout: a message that has started must be complete in time (slowloris). The
      // clock is per message: a client streaming thousands of queries ends most reads in the
      // middle of one, and each completed message restarts it.
      if (handed > 0 && readTimer !== null) {
        clearTimeout(readTimer);
        readTimer = null;
      }
      if (reader.partial) {
        readTimer ??= setTimeout(() => close('read_timeout'), this.settings.read_timeout_ms);
      } else if (readTimer !== null) {
        clearTimeout(readTimer);
        readTimer = null;
      }
      if (!writeBlocked && reader.buffered < READ_AHEAD) socket.resume();
      else socket.pause();
      // Half-close: the client sent its last query; once all are answered, close our side too.
      if (ended && !endSent && !writeBlocked && session.outstanding === 0) {
        endSent = true;
        socket.end();
      }
    };

    // Idle: nothing received or sent and nothing outstanding for idle_timeout_ms. Whole
    // queries waiting only for the prefix's share (its other connections busy) are our
    // doing, not idleness; waiting for a client that does not read is its own.
    socket.setTimeout(this.settings.idle_timeout_ms, () => {
      if (session.outstanding === 0 && (writeBlocked || reader.buffered === 0)) close('idle');
    });
    socket.on('data', (chunk: Buffer) => {
      reader.append(chunk);
      pump();
    });
    socket.on('drain', () => {
      writeBlocked = false;
      pump();
    });
    socket.on('end', () => {
      ended = true;
      pump();
    });
    socket.on('close', () => close(null));
  }

  private logError(err: unknown): void {
    const suppressed = this.errorLines.take();
    if (suppressed === null) return;
    this.log.error({ err: err instanceof Error ? err.message : String(err), suppressed }, 'tcp connection closed on an unexpected error');
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
