// TCP connection caps and timeouts with raw sockets against a real recursor, and
// the shared upstream pool: many held client connections cannot use up the
// recursor's TCP slots (docs/tcp.md).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { stopAll } from '../helpers/process.js';
import { waitFor } from '../helpers/poll.js';
import { dig } from '../helpers/dig.js';
import { query, tcpPipeline } from '../helpers/wire.js';
import { frame } from '../../src/dns/framing.js';

const until = (cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> => waitFor(cond, ms, 25);

interface Conn {
  readonly socket: net.Socket;
  readonly closed: () => boolean;
  readonly received: () => number;
}

function open(port: number, localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let closed = false;
    let received = 0;
    socket.on('close', () => (closed = true));
    socket.on('data', (d) => (received += d.length));
    socket.once('connect', () => resolve({ socket, closed: () => closed, received: () => received }));
    socket.once('error', reject);
  });
}

/** TCP connections established to `port` on loopback, as the kernel sees them */
function establishedTo(port: number): number {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', `dport = :${port}`]).toString();
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

describe('TCP limits', () => {
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

  it('closes the connection over the per-client cap and counts it', async () => {
    const before = await ag.metric('ampguard_dropped_total{reason="overload"}');
    const conns = await Promise.all([open(ag.port), open(ag.port), open(ag.port)]);
    const extra = await open(ag.port);
    expect(await until(extra.closed, 3000)).toBe(true);
    // another client address still gets in, and is served
    const other = await open(ag.port, '127.0.0.9');
    other.socket.write(frame(query('www.example.test', 'A', 5)));
    expect(await until(() => other.received() > 0, 3000)).toBe(true);
    expect(other.closed()).toBe(false);
    expect(await ag.metric('ampguard_dropped_total{reason="overload"}')).toBe(before + 1);
    for (const c of [...conns, other]) c.socket.destroy();
  });

  it('closes an idle connection after idle_timeout_ms and counts it', async () => {
    const before = await ag.metric('ampguard_tcp_closed_total{reason="idle"}');
    const c = await open(ag.port, '127.0.0.10');
    expect(await until(c.closed, 5000)).toBe(true);
    expect(await ag.metric('ampguard_tcp_closed_total{reason="idle"}')).toBe(before + 1);
  });

  it('closes a connection whose message never completes after read_timeout_ms (slowloris)', async () => {
    const before = await ag.metric('ampguard_tcp_closed_total{reason="read_timeout"}');
    const idleBefore = await ag.metric('ampguard_tcp_closed_total{reason="idle"}');
    const c = await open(ag.port, '127.0.0.11');
    // announce a 60000-byte message and trickle it a byte at a time, more often than
    // idle_timeout_ms: the connection is never idle, so only the read timeout can close it
    c.socket.write(Buffer.from([60000 >> 8, 60000 & 255]));
    const trickle = setInterval(() => {
      if (!c.closed()) c.socket.write(Buffer.from([0x41]));
    }, 50);
    try {
      expect(await until(c.closed, 5000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
    expect(await ag.metric('ampguard_tcp_closed_total{reason="read_timeout"}')).toBe(before + 1);
    expect(await ag.metric('ampguard_tcp_closed_total{reason="idle"}')).toBe(idleBefore);
  });

  it('still answers after all that', async () => {
    const replies = await tcpPipeline(ag.port, [query('www.example.test', 'A', 42)], 1);
    expect(replies).toHaveLength(1);
  });
});

describe('per-client caps keyed by the budget prefix', () => {
  afterEach(() => stopAll());

  it('counts the addresses of one prefix_v4 /24 as one client', async () => {
    const rec = await startRecursor();
    const ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${rec.port}` }],
        block: { mode: 'off' },
        workers: 1,
        policy: { large_response: { prefix_v4: 24 } },
        tcp: { max_connections_per_client: 2, idle_timeout_ms: 60_000 },
      },
    });
    const a = await open(ag.port, '127.0.1.1');
    const b = await open(ag.port, '127.0.1.2');
    // a third address of the same /24 is over the cap
    const c = await open(ag.port, '127.0.1.3');
    expect(await until(c.closed, 3000)).toBe(true);
    // another /24 is another client
    const d = await open(ag.port, '127.0.2.1');
    d.socket.write(frame(query('www.example.test', 'A', 5)));
    expect(await until(() => d.received() > 0, 3000)).toBe(true);
    expect(a.closed() || b.closed()).toBe(false);
    for (const x of [a, b, d]) x.socket.destroy();
    await rec.close();
  });
});

describe('upstream TCP pooled per backend', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await stopAll();
  });

  // 160 client connections from 5 addresses, each with a query answered and held
  // open, against pdns_recursor's default max-tcp-clients (128): with an upstream
  // connection per client connection the recursor refuses the rest and a real
  // client gets SERVFAIL; pooled, it is answered.
  /** ampguard in front of `rec` with 8 upstream connections and client connections held idle for a minute */
  async function startCapped(rec: Recursor, backend: Record<string, unknown>): Promise<Ampguard> {
    const ag = await startAmpguard({
      config: {
        backends: [{ address: `127.0.0.1:${rec.port}`, ...backend }],
        health_check: { qname: 'example.test', qtype: 'SOA' },
        block: { mode: 'off' },
        workers: 1,
        tcp: { upstream_connections_per_backend: 8, idle_timeout_ms: 60_000 },
      },
    });
    cleanups.push(() => ag.stop());
    return ag;
  }

  async function holdAndAsk(ag: Ampguard, rec: Recursor, maxUpstream: number): Promise<void> {
    const held: Conn[] = [];
    cleanups.push(() => held.forEach((c) => c.socket.destroy()));
    for (let a = 0; a < 5; a++) {
      for (let i = 0; i < 32; i++) {
        const c = await open(ag.port, `127.0.0.${21 + a}`);
        held.push(c);
        c.socket.write(frame(query('www.example.test', 'A', i)));
      }
    }
    expect(await until(() => held.every((c) => c.received() > 0), 15_000)).toBe(true);
    expect(held.some((c) => c.closed())).toBe(false);
    expect(establishedTo(rec.port)).toBeLessThanOrEqual(maxUpstream);
    for (let i = 0; i < 5; i++) {
      const r = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+tcp', '-b', '127.0.0.53', '+time=3']);
      expect(r.status).toBe('NOERROR');
    }
    expect(await ag.metric('ampguard_tcp_connections')).toBeGreaterThanOrEqual(160);
  }

  it('160 held client connections from 5 addresses leave the recursor able to answer a real client', async () => {
    const rec = await startRecursor();
    cleanups.push(() => rec.close());
    await holdAndAsk(await startCapped(rec, {}), rec, 8);
  });

  it('with PROXY v2 (one upstream connection per client address, within the cap) as well', async () => {
    const rec = await startRecursor({ settings: { 'proxy-protocol-from': '127.0.0.1' } });
    cleanups.push(() => rec.close());
    await holdAndAsk(await startCapped(rec, { proxy_protocol: true }), rec, 8);
  });
});
