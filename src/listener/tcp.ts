// TCP listen sockets: connection caps (total and per client), idle and read
// timeouts, framing; each connection's queries go to its own TcpSession.
import net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import type { Config } from '../config/schema.js';
import type { Counters } from '../metrics/counters.js';
import { FrameReader, frame } from './framing.js';
import { unmapIpv4 } from './mapped.js';
import type { TcpClient, TcpSession } from '../pipeline/tcp-session.js';

export type SessionFactory = (client: TcpClient) => TcpSession;

/** Connection counts shared by every TCP listener, so the caps are process-wide. */
export class ConnectionLimits {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(private readonly settings: Config['tcp']) {}

  get open(): number {
    return this.total;
  }

  tryOpen(address: string): boolean {
    const mine = this.perClient.get(address) ?? 0;
    if (this.total >= this.settings.max_connections || mine >= this.settings.max_connections_per_client) return false;
    this.total++;
    this.perClient.set(address, mine + 1);
    return true;
  }

  close(address: string): void {
    this.total--;
    const mine = (this.perClient.get(address) ?? 1) - 1;
    if (mine <= 0) this.perClient.delete(address);
    else this.perClient.set(address, mine);
  }
}

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly address: HostPort,
    private readonly settings: Config['tcp'],
    private readonly limits: ConnectionLimits,
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
      this.server.once('error', reject);
      this.server.listen({ port: this.address.port, host: this.address.host, backlog: 1024 }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    const raw = socket.remoteAddress ?? '';
    const v4 = unmapIpv4(raw);
    const address = v4 ?? raw;
    if (!this.limits.tryOpen(address)) {
      this.counters.dropped.overload++;
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let ended = false;
    const client: TcpClient = {
      address,
      port: socket.remotePort ?? 0,
      family: v4 !== null || socket.remoteFamily !== 'IPv6' ? 4 : 6,
      localAddress: socket.localAddress ?? this.address.host,
      localPort: socket.localPort ?? this.address.port,
      write: (message) => {
        if (socket.destroyed) return;
        socket.write(frame(message));
        if (ended && session.outstanding === 0) socket.end();
      },
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    };
    const session = this.newSession(client);
    const reader = new FrameReader(65_535);
    let readTimer: NodeJS.Timeout | null = null;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      if (readTimer) clearTimeout(readTimer);
      session.close();
      socket.destroy();
      this.sockets.delete(socket);
      this.limits.close(address);
    };
    // Idle: nothing received and nothing outstanding for idle_timeout_ms.
    socket.setTimeout(this.settings.idle_timeout_ms, () => {
      if (session.outstanding === 0) close();
    });
    socket.on('data', (chunk: Buffer) => {
      const messages = reader.push(chunk);
      if (messages === null) return close();
      for (const m of messages) session.onQuery(m);
      // Read timeout: a message that has started must be complete in time (slowloris).
      if (reader.partial && readTimer === null) {
        readTimer = setTimeout(close, this.settings.read_timeout_ms);
      } else if (!reader.partial && readTimer !== null) {
        clearTimeout(readTimer);
        readTimer = null;
      }
    });
    socket.on('end', () => {
      // Half-close: the client sent its last query; answer what is outstanding, then close.
      ended = true;
      if (session.outstanding === 0) socket.end();
    });
    socket.on('error', close);
    socket.on('close', close);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
