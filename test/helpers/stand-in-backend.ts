// A misbehaving stand-in for a recursor: a UDP socket on loopback that answers
// each query as its first label says, so one ampguard can be fed every kind of
// bad reply in one test. Labels:
//   short       a 12-byte FORMERR (header only, no question)
//   headeronly  the reply's header alone, QDCOUNT still 1
//   wrongid     a good reply with another ID
//   garbage     1..40 random bytes, the query's ID first
//   oversized   a reply of 65000 bytes, the question intact
//   noqr        the query echoed with QR=0
//   silent      nothing
//   unsolicited a good reply, then 30 forged datagrams (0..40 bytes, random IDs)
//   anything else: a good reply (the query with QR and RA set, NOERROR)
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';

export interface StandIn {
  readonly port: number;
  /** every datagram received, in order */
  readonly received: Buffer[];
  /** every reply goes out this late (a slow upstream); 0: at once */
  delayMs: number;
  close(): Promise<void>;
}

function firstLabel(q: Buffer): string {
  const len = q[12] ?? 0;
  return q.subarray(13, 13 + len).toString('latin1').toLowerCase();
}

export function goodReply(q: Buffer): Buffer {
  const r = Buffer.from(q);
  r[2] = (r[2]! | 0x80) & ~0x02; // QR, not TC
  r[3] = 0x80; // RA, NOERROR
  return r;
}

export function misbehave(q: Buffer): Buffer[] {
  const id = q.subarray(0, 2);
  switch (firstLabel(q)) {
    case 'short':
      return [Buffer.concat([id, Buffer.from([0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0])])];
    case 'headeronly':
      return [goodReply(q).subarray(0, 12)];
    case 'wrongid': {
      const r = goodReply(q);
      r.writeUInt16BE((r.readUInt16BE(0) + 1) & 0xffff, 0);
      return [r];
    }
    case 'garbage':
      return [Buffer.concat([id, randomBytes(Math.floor(Math.random() * 39))])];
    case 'oversized': {
      const r = Buffer.alloc(65000);
      goodReply(q).copy(r);
      return [r];
    }
    case 'noqr':
      return [Buffer.from(q)];
    case 'silent':
      return [];
    case 'unsolicited': {
      const out = [goodReply(q)];
      for (let i = 0; i < 30; i++) out.push(randomBytes(i < 12 ? i : 12 + (i % 29)));
      return out;
    }
    default:
      return [goodReply(q)];
  }
}

export function startStandIn(): Promise<StandIn> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const standIn: StandIn = {
    port: 0,
    received,
    delayMs: 0,
    close: () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      return new Promise((r) => socket.close(() => r()));
    },
  };
  socket.on('message', (msg, rinfo) => {
    received.push(msg);
    if (msg.length < 12) return;
    const replies = misbehave(msg);
    const send = (): void => {
      if (!closed) for (const r of replies) socket.send(r, rinfo.port, rinfo.address);
    };
    if (standIn.delayMs <= 0) return send();
    const t = setTimeout(() => {
      timers.delete(t);
      send();
    }, standIn.delayMs);
    timers.add(t);
  });
  return new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () => resolve(Object.assign(standIn, { port: socket.address().port })));
  });
}
