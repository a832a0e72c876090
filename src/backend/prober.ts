// Health checks of the backends (the I/O half of CONTRIBUTING.md rule 10): every interval_ms a
// check query over UDP; a reply with the same ID and any RCODE but SERVFAIL
// within timeout_ms is a pass (dnsdist's default), anything else a failure.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { buildCheckQuery } from '../dns/check-query.js';
import { readId, readRcode, writeId, RCODE_SERVFAIL } from '../dns/header.js';
import { replyHeaderProblem } from '../dns/reply-check.js';
import { PROXY_V2_LOCAL } from './proxy-protocol.js';
import type { Backend } from './pool.js';
import { OncePerSecond } from '../log/once-per-second.js';

export class Prober {
  private timer: NodeJS.Timeout | null = null;
  private readonly sockets = new Map<Backend<unknown>, dgram.Socket>();
  private readonly query: Buffer;
  private readonly faults: OncePerSecond;

  constructor(
    private readonly backends: readonly Backend<unknown>[],
    private readonly settings: Config['health_check'],
    private readonly log: Logger,
  ) {
    this.query = buildCheckQuery(settings.qname, settings.qtype);
    this.faults = new OncePerSecond(log, 'health check failed to run');
  }

  start(): void {
    for (const b of this.backends) {
      const socket = dgram.createSocket(b.spec.address.family === 6 ? 'udp6' : 'udp4');
      socket.on('error', () => undefined); // a refused check is a failed check, reported by its timeout
      this.sockets.set(b, socket);
    }
    // A check that throws (a send on a closed socket, say) is that check's failure
    // to run, never an exception out of the timer, which would end the process.
    const tick = (): void => {
      for (const b of this.backends) {
        try {
          this.check(b);
        } catch (err) {
          this.faults.report('health_check', err);
        }
      }
    };
    tick();
    this.timer = setInterval(tick, this.settings.interval_ms);
    this.timer.unref();
  }

  private check(backend: Backend<unknown>): void {
    const socket = this.sockets.get(backend);
    if (!socket) return;
    const id = randomInt(0, 65536);
    const query = Buffer.from(this.query);
    writeId(query, id);
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('message', onMessage);
      if (backend.recordCheck(ok, this.settings.fall, this.settings.rise)) {
        this.log.warn({ backend: backend.name, up: backend.up }, backend.up ? 'backend up' : 'backend down');
      }
    };
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
      // any datagram can reach this unconnected socket: the backend's port, our ID and QR=1, or ignored
      if (replyHeaderProblem(msg) !== null || readId(msg) !== id || rinfo.port !== backend.spec.address.port) return;
      settle(readRcode(msg) !== RCODE_SERVFAIL);
    };
    const timer = setTimeout(() => settle(false), this.settings.timeout_ms);
    socket.on('message', onMessage);
    const { host, port } = backend.spec.address;
    const payload = backend.spec.proxyProtocol ? [PROXY_V2_LOCAL, query] : query;
    socket.send(payload, port, host, (err) => {
      if (err) settle(false);
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}
