// Hostile TCP clients for the hostile tier: pipelining floods that never read
// their answers, bounded in queries and in time; and a stand-in TCP backend
// that counts how many queries are outstanding at it.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { frame } from '../../src/dns/framing.js';

/** the query turned into its answer: QR and RA set, NOERROR, same ID and question */
function goodReply(q: Buffer): Buffer {
  const r = Buffer.from(q);
  r[2] = (r[2]! | 0x80) & ~0x02;
  r[3] = 0x80;
  return r;
}

// one polling helper for every test (a deadline, never a fixed sleep)
export { until } from './blast.js';

/** resident memory of a process, in bytes (VmRSS of /proc/PID/status) */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export interface FloodOptions {
  readonly port: number;
  /** one connection per address, reopened when ampguard closes it */
  readonly localAddresses: readonly string[];
  /** the framed query, sent again and again */
  readonly query: Buffer;
  readonly maxQueries: number;
  readonly maxMs: number;
  /** queries per write */
  readonly batch?: number;
}

export interface FloodResult {
  readonly sent: number;
  /** connections ampguard closed on us */
  readonly closedByPeer: number;
}

/**
 * Pipelines `query` on one connection per address as fast as the connection
 * takes it and never reads a byte of the answers, until maxQueries are sent;
 * the connections stay open, unread, until maxMs pass (or stop()).
 */
export function nonReaderFlood(opts: FloodOptions): { done: Promise<FloodResult>; sentSoFar(): number; stop(): void } {
  const framed = frame(opts.query);
  const perBatch = opts.batch ?? 200;
  const batch = Buffer.concat(Array.from({ length: perBatch }, () => framed));
  const deadline = Date.now() + opts.maxMs;
  const sockets = new Set<net.Socket>();
  let sent = 0;
  let closedByPeer = 0;
  let stopped = false;
  const timeUp = (): boolean => stopped || Date.now() >= deadline;
  const sendingDone = (): boolean => timeUp() || sent >= opts.maxQueries;
  const connectOne = (localAddress: string): Promise<void> =>
    new Promise((resolve) => {
      if (sendingDone()) return resolve();
      const s = net.connect({ port: opts.port, host: '127.0.0.1', localAddress });
      sockets.add(s);
      s.pause(); // never read: the answers pile up on ampguard's side
      const pump = (): void => {
        if (timeUp()) return void s.destroy();
        while (!sendingDone() && !s.destroyed && s.writableLength < 65_536) {
          s.write(batch);
          sent += perBatch;
        }
      };
      s.on('connect', pump);
      s.on('drain', pump);
      const tick = setInterval(pump, 50);
      s.on('error', () => undefined);
      s.on('close', () => {
        clearInterval(tick);
        sockets.delete(s);
        if (!timeUp()) closedByPeer++;
        // a small pause before the next connection, so a refused connect cannot spin
        if (!sendingDone()) setTimeout(() => void connectOne(localAddress).then(resolve), 20);
        else resolve();
      });
    });
  const done = Promise.all(opts.localAddresses.map(connectOne)).then(() => ({ sent, closedByPeer }));
  return {
    done,
    sentSoFar: () => sent,
    stop() {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
  };
}

export interface TcpStandIn {
  readonly port: number;
  /** queries received and not yet answered, now and at most */
  readonly outstanding: () => number;
  readonly maxOutstanding: () => number;
  /** the most queries one connection had unanswered at once */
  readonly maxOutstandingPerConnection: () => number;
  readonly received: () => number;
  close(): Promise<void>;
}

/**
 * A TCP backend that answers every query `delayMs` after it arrives (or never,
 * with `silent`), counting what is outstanding at it across all connections.
 */
export async function tcpStandIn(opts: { delayMs: number; silent?: boolean }): Promise<TcpStandIn> {
  let outstanding = 0;
  let max = 0;
  let maxPerConnection = 0;
  let received = 0;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let mine = 0;
    s.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + q.length);
        received++;
        outstanding++;
        max = Math.max(max, outstanding);
        mine++;
        maxPerConnection = Math.max(maxPerConnection, mine);
        if (opts.silent) continue;
        const t = setTimeout(() => {
          timers.delete(t);
          outstanding--;
          mine--;
          if (!s.destroyed) s.write(frame(goodReply(q)));
        }, opts.delayMs);
        timers.add(t);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    outstanding: () => outstanding,
    maxOutstanding: () => max,
    maxOutstandingPerConnection: () => maxPerConnection,
    received: () => received,
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
