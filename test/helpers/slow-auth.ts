// A slow authoritative server for a recursor to forward a zone to
// (pdns_recursor forward-zones=ZONE=127.0.0.1:PORT): UDP on loopback, every
// query answered after `delayMs` with AA and one A record (192.0.2.1), so each
// query of a unique name under the zone costs the recursor `delayMs`.
import dgram from 'node:dgram';

export interface SlowAuth {
  readonly port: number;
  /** queries received */
  received(): number;
  close(): Promise<void>;
}

/** end of the question of a query (its first name, type and class), or -1 */
function questionEnd(q: Buffer): number {
  let i = 12;
  while (i < q.length) {
    const len = q[i]!;
    if (len === 0) return i + 5 <= q.length ? i + 5 : -1;
    if (len >= 0xc0) return -1;
    i += len + 1;
  }
  return -1;
}

export function slowAnswer(q: Buffer): Buffer | null {
  if (q.length < 12 || q.readUInt16BE(4) !== 1) return null;
  const end = questionEnd(q);
  if (end < 0) return null;
  const head = Buffer.from(q.subarray(0, end));
  head[2] = 0x84 | (head[2]! & 0x01); // QR, AA, RD copied
  head[3] = 0x00; // NOERROR
  head.writeUInt16BE(1, 6); // ANCOUNT
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10); // the query's OPT is not repeated
  // the question's name by pointer, A IN, TTL 60, 192.0.2.1
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
  return Buffer.concat([head, rr]);
}

export function startSlowAuth(delayMs: number): Promise<SlowAuth> {
  const socket = dgram.createSocket('udp4');
  const timers = new Set<NodeJS.Timeout>();
  let received = 0;
  let closed = false;
  socket.on('message', (msg, rinfo) => {
    received++;
    const reply = slowAnswer(msg);
    if (reply === null) return;
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) socket.send(reply, rinfo.port, rinfo.address);
    }, delayMs);
    timers.add(t);
  });
  return new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () =>
      resolve({
        port: socket.address().port,
        received: () => received,
        close: () => {
          closed = true;
          for (const t of timers) clearTimeout(t);
          return new Promise((r) => socket.close(() => r()));
        },
      }),
    );
  });
}

/** every address the recursor must never be sent to: all but 127.0.0.0/8, where the stand-in is */
const NOT_LOOPBACK = '0.0.0.0/2, 64.0.0.0/3, 96.0.0.0/4, 112.0.0.0/5, 120.0.0.0/6, 124.0.0.0/7, 126.0.0.0/8, 128.0.0.0/1, ::/0';

/** The recursor settings that forward slow.test to the stand-in (startRecursor's `settings`), PROXY v2 from loopback when `proxy`. */
export function slowForwarding(auth: SlowAuth, proxy: boolean): Record<string, string> {
  return {
    'forward-zones': `slow.test=127.0.0.1:${auth.port}`,
    // the stand-in answers after its delay (1.5 s in the tests), the recursor's own default give-up time
    'network-timeout': '3000',
    // the stand-in is on loopback: never anything else
    'dont-query': NOT_LOOPBACK,
    ...(proxy ? { 'proxy-protocol-from': '127.0.0.1' } : {}),
  };
}
