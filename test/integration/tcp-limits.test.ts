// TCP connection caps and timeouts, with raw sockets against a real recursor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { query, tcpPipeline } from '../helpers/wire.js';

let rec: Recursor;
let ag: Ampguard;

beforeAll(async () => {
  ({ rec, ag } = await startPair({
    block: { mode: 'off' },
    // exact caps need one process: with N workers each holds cap/N (see README)
    workers: 1,
    tcp: { max_connections: 6, max_connections_per_client: 3, idle_timeout_ms: 400, read_timeout_ms: 300 },
  }));
});
afterAll(() => stopPair({ rec, ag }));

function open(localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closedAt: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: ag.port, host: '127.0.0.1', localAddress });
    const closedAt = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    socket.once('connect', () => resolve({ socket, closedAt }));
    socket.once('error', reject);
  });
}

const closedWithin = (p: Promise<number>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('TCP limits', () => {
  it('closes the connection over the per-client cap and counts it', async () => {
    const before = await ag.metric('ampguard_dropped_total{reason="overload"}');
    const conns = await Promise.all([open(), open(), open()]);
    const extra = await open();
    expect(await closedWithin(extra.closedAt, 1000)).toBe(true);
    // another client address still gets in
    const other = await open('127.0.0.9');
    expect(await closedWithin(other.closedAt, 100)).toBe(false);
    expect(await ag.metric('ampguard_dropped_total{reason="overload"}')).toBe(before + 1);
    for (const c of [...conns, other]) c.socket.destroy();
  });

  it('closes an idle connection after idle_timeout_ms', async () => {
    const c = await open('127.0.0.10');
    const t0 = Date.now();
    const closed = await c.closedAt;
    expect(closed - t0).toBeGreaterThanOrEqual(350);
    expect(closed - t0).toBeLessThan(3000);
  });

  it('closes a connection whose message never completes after read_timeout_ms (slowloris)', async () => {
    const c = await open('127.0.0.11');
    const t0 = Date.now();
    const q = query('www.example.test', 'A', 1);
    c.socket.write(Buffer.from([0, q.length]));
    c.socket.write(q.subarray(0, 5));
    // keep trickling a byte so the idle timer never fires; the read timer must
    const trickle = setInterval(() => c.socket.write(Buffer.alloc(0)), 50);
    const closed = await c.closedAt;
    clearInterval(trickle);
    expect(closed - t0).toBeLessThan(3000);
  });

  it('still answers after all that', async () => {
    const replies = await tcpPipeline(ag.port, [query('www.example.test', 'A', 42)], 1);
    expect(replies).toHaveLength(1);
  });
});
