// UDP listen sockets: receive, hand to the UDP path, send what it decides.
// Replies only ever go to the address and port the query came from.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import type { UdpPath, UdpReplyTarget } from '../pipeline/udp-path.js';
import { unmapIpv4 } from './mapped.js';
import { bindError } from '../net/bind-error.js';
import type { UdpIoErrorKey } from '../metrics/counters.js';
import { OncePerSecond } from '../log/once-per-second.js';

function ipLiteralLookup(address: string, family: unknown, callback: (err: null, address: string, family: number) => void): void {
  callback(null, address, typeof family === 'number' ? family : address.includes(':') ? 6 : 4);
}

// dgram's reusePort (Node >= 22.12): each cluster worker binds its own socket
// (exclusive) and the kernel spreads clients over them, as in native mode
// (docs/performance.md); older Nodes share the primary's socket.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const DGRAM_REUSE_PORT = process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));

export class UdpListener implements UdpReplyTarget {
  private readonly socket: dgram.Socket;

  constructor(
    readonly address: HostPort,
    private readonly path: UdpPath,
    log: Logger,
    /** ampguard_udp_io_errors_total's numbers (metrics/counters.ts) */
    errors: Record<UdpIoErrorKey, number>,
  ) {
    this.socket = dgram.createSocket({
      type: address.family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
      // Replies only ever go to the IP literal a query came from; dgram's default
      // dns.lookup would cost a regex and a nextTick per reply for nothing.
      lookup: ipLiteralLookup,
      ...(DGRAM_REUSE_PORT ? { reusePort: true } : {}),
    } as dgram.SocketOptions);
    if (address.family === 4) {
      this.socket.on('message', (msg, rinfo) => this.path.onQuery(msg, rinfo.address, 4, rinfo.address, rinfo.port, this));
    } else {
      this.socket.on('message', (msg, rinfo) => {
        const v4 = unmapIpv4(rinfo.address);
        this.path.onQuery(msg, v4 ?? rinfo.address, v4 === null ? 6 : 4, rinfo.address, rinfo.port, this);
      });
    }
    // dgram reads on after an error; a flood of them is counted, not logged line by line
    const errorLog = new OncePerSecond(log, 'udp socket error');
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      errors[err.syscall === 'send' ? 'listen:send_error' : 'listen:socket_error']++;
      errorLog.report(`${address.host}:${address.port}`, err);
    });
  }

  get localAddress(): string {
    return this.address.host;
  }
  get localPort(): number {
    return this.address.port;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error): void => reject(bindError(err, 'udp', this.address));
      this.socket.once('error', failed);
      this.socket.bind({ port: this.address.port, address: this.address.host, exclusive: DGRAM_REUSE_PORT }, () => {
        this.socket.off('error', failed);
        resolve();
      });
    });
  }

  send(wire: Buffer, port: number, address: string): void {
    this.socket.send(wire, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
