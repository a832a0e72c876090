// A client that sends its query and shuts its sending side at once (a stub's
// one-shot TCP lookup) is answered even when its prefix's share of queries in
// flight (tcp.max_in_flight_per_client) is held by its other connection: the
// query waits framed until the share comes back, then is answered, and only
// then does ampguard end its side. Before, the connection was ended at once
// (nothing outstanding yet) and the query never answered. Real pdns_recursor
// forwarding slow.test to a stand-in that answers after 1.5 s; one worker, so
// that both connections share one process's share (with two, each worker has
// its own half and the kernel picks which one takes a connection).
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { slowForwarding, startSlowAuth, type SlowAuth } from '../helpers/slow-auth.js';
import { stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';
import { query } from '../helpers/wire.js';
import { FrameReader, frame } from '../../src/dns/framing.js';

const SLOW_MS = 1500;
const CLIENT = '127.0.0.50';

/** opens a connection from CLIENT, sends one query for NAME (then half-closes when `end`); resolves with the rcodes answered until the server closes */
function lookup(port: number, name: string, id: number, end: boolean): { answers: number[]; closed: Promise<void>; socket: net.Socket } {
  const answers: number[] = [];
  const reader = new FrameReader(65_535);
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: CLIENT, allowHalfOpen: true });
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    reader.append(chunk);
    for (let m = reader.next(); m !== null; m = reader.next()) answers.push(m[3]! & 0x0f);
  });
  socket.on('connect', () => {
    socket.write(frame(query(name, 'A', id)));
    if (end) socket.end();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { answers, closed, socket };
}

describe('TCP half-close', () => {
  let rec: Recursor | undefined;
  let ag: Ampguard | undefined;
  let auth: SlowAuth | undefined;
  afterEach(async () => {
    await ag?.stop();
    await rec?.close();
    await auth?.close();
    await stopAll();
  });

  it('answers a one-shot query that waited for its prefix share before ending its side', async () => {
    auth = await startSlowAuth(SLOW_MS);
    rec = await startRecursor({
      settings: slowForwarding(auth, true),
    });
    ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: true }],
        health_check: { qname: 'example.test', qtype: 'SOA' },
        block: { mode: 'userspace' },
        workers: 1,
        tcp: { max_in_flight_per_client: 1 },
      },
    });
    const slow = lookup(ag.port, 'held.slow.test', 1, false);
    // the slow query holds the prefix's one slot at the backend
    await poll(() => auth!.received(), (n) => n >= 1, 5000);
    const oneShot = lookup(ag.port, 'www.example.test', 2, true);
    await Promise.race([oneShot.closed, new Promise((r) => setTimeout(r, 3 * SLOW_MS + 2000))]);
    expect(oneShot.answers).toEqual([0]);
    expect(await poll(() => slow.answers.length, (n) => n > 0, 3 * SLOW_MS)).toBe(1);
    slow.socket.destroy();
    oneShot.socket.destroy();
  }, 30_000);
});
