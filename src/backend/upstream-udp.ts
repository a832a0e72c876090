// The UDP socket to one backend. Connected, so the kernel only hands us
// datagrams from the backend's address and port.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { BackendSpec } from '../config/compile.js';
import type { UdpSender } from './pool.js';
import type { UdpIoErrorKey } from '../metrics/counters.js';
import { LogBudget } from '../log/rate-limited.js';

export class UdpUpstream implements UdpSender {
  private readonly socket: dgram.Socket;
  private readonly errorLines = new LogBudget(1, 60_000);

  constructor(
    private readonly spec: BackendSpec,
    onReply: (reply: Buffer) => void,
    private readonly log: Logger,
    /** ampguard_udp_io_errors_total's numbers (metrics/counters.ts) */
    private readonly errors: Record<UdpIoErrorKey, number>,
  ) {
    // Replies arrive in bursts under load: a default-sized receive buffer overflows
    // (UdpRcvbufErrors) and the queries end as backend timeouts.
    this.socket = dgram.createSocket({ type: spec.address.family === 6 ? 'udp6' : 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    this.socket.on('message', onReply);
    // ECONNREFUSED and friends arrive here while a backend is down; the health
    // checks report that, so log at most once a minute.
    // dgram reads on after an error (an ICMP unreachable surfaces as ECONNREFUSED here)
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errors[err.syscall === 'send' ? 'upstream:send_error' : 'upstream:socket_error']++;
      const suppressed = this.errorLines.take();
      if (suppressed !== null) this.log.warn({ backend: spec.name, err: err.message, suppressed }, 'backend socket error');
    });
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.connect(this.spec.address.port, this.spec.address.host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  send(query: Buffer, header: Buffer | null): void {
    try {
      if (header) this.socket.send([header, query]);
      else this.socket.send(query);
    } catch (err) {
      this.errors['upstream:send_error']++;
      this.log.debug({ backend: this.spec.name, err: (err as Error).message }, 'send to backend failed');
    }
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
