// TCP listen sockets: connection caps (total, and per client prefix); each
// accepted connection is a TcpConnection (tcp-connection.ts: idle and read
// timeouts, framing, and flow control in both directions, docs/tcp.md):
// messages are handed to the connection's TcpSession one at a time, never more
// than tcp.max_in_flight_per_connection outstanding and never past the client
// prefix's share of queries in flight (tcp.max_in_flight_per_client); reading stops while
// messages wait or answers are not draining; a client whose unread answers pass
// tcp.max_buffered_bytes is closed.
import net from 'node:net';
import type { Logger } from 'pino';
import type { Family, HostPort } from '../config/address.js';
import type { Config } from '../config/schema.js';
import type { Counters } from '../metrics/counters.js';
import { unmapIpv4 } from './mapped.js';
import type { TcpClient, TcpSession } from '../pipeline/tcp-session.js';
import { TcpConnection } from './tcp-connection.js';
import { bindError } from '../net/bind-error.js';
import { LogBudget } from '../log/rate-limited.js';

type SessionFactory = (client: TcpClient) => TcpSession;
/** the key a client's connections are counted under: its budget prefix (/32, /64 by default) */
type ClientKey = (address: string, family: Family) => string;

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
    const client = {
      address,
      port: socket.remotePort ?? 0,
      family,
      key,
      localAddress: socket.localAddress ?? this.address.host,
      localPort: socket.localPort ?? this.address.port,
    };
    new TcpConnection(socket, client, this.settings, this.newSession, {
      onClose: (reason) => {
        if (reason !== null) this.counters.tcpClosed[reason]++;
        this.sockets.delete(socket);
        this.limits.close(key);
      },
      onError: (err) => this.logError(err),
    });
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
