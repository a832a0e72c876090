// Pipeline floods on one TCP connection. The in-flight cap
// holds per message (one write of 3000 queries never puts more than the cap
// outstanding at the backend), the schema maxima cannot hang ampguard (65535 in
// flight on one client connection: what the upstream connections cannot carry
// waits in the queue and fails as pool_full at its deadline), and SIGTERM under
// a flood exits promptly.
// Against a stand-in TCP backend that counts what is outstanding at it.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { stopAll } from '../helpers/process.js';
import { query } from '../helpers/wire.js';
import { frame } from '../../src/dns/framing.js';
import { PIPELINE_DEPTH } from '../../src/backend/tcp-forwarder.js';
import { nonReaderFlood, tcpStandIn, until, type TcpStandIn } from '../helpers/tcp-flood.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await stopAll();
});

async function setup(backend: { delayMs: number; silent?: boolean }, tcp: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<{ ag: Ampguard; standIn: TcpStandIn }> {
  const standIn = await tcpStandIn(backend);
  cleanups.push(() => standIn.close());
  const ag = await startAmpguard({
    config: { backends: [{ address: `127.0.0.1:${standIn.port}` }], block: { mode: 'off' }, workers: 1, tcp, ...extra },
  });
  cleanups.push(() => ag.stop());
  return { ag, standIn };
}

/** one connection, every query in a single write; resolves with the IDs of the answers read */
function pipelineOnce(port: number, count: number, localAddress: string): { answers: Set<number>; socket: net.Socket } {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  const answers = new Set<number>();
  let buf = Buffer.alloc(0);
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      answers.add(buf.readUInt16BE(2));
      buf = buf.subarray(2 + buf.readUInt16BE(0));
    }
  });
  const wire = Buffer.concat(Array.from({ length: count }, (_, i) => frame(query(`q${i}.example.test`, 'A', i & 0xffff))));
  socket.once('connect', () => socket.write(wire));
  cleanups.push(() => void socket.destroy());
  return { answers, socket };
}

describe('a pipeline flood on one TCP connection', () => {
  it('never has more than max_in_flight_per_connection outstanding, counted per message', async () => {
    const { ag, standIn } = await setup({ delayMs: 5 }, { max_in_flight_per_connection: 100, max_in_flight_per_client: 100 });
    const { answers } = pipelineOnce(ag.port, 3000, '127.0.0.41');
    expect(await until(() => answers.size === 3000, 30_000)).toBe(true);
    expect(standIn.received()).toBe(3000);
    expect(standIn.maxOutstanding()).toBeLessThanOrEqual(100);
    // and the cap is used: the queries were pipelined, not sent one by one
    expect(standIn.maxOutstanding()).toBeGreaterThan(10);
  });

  it('does not hang at the schema maxima: what no upstream connection can carry waits, fails as pool_full, and SIGTERM under the flood exits promptly', async () => {
    const upstream = 1024; // the schema maximum, at 10 queries each
    const { ag, standIn } = await setup(
      { delayMs: 0, silent: true },
      { max_in_flight_per_connection: 65_535, max_in_flight_per_client: 65_535, upstream_connections_per_backend: upstream, upstream_queue_timeout_ms: 200 },
      { backend_timeout_ms: 60_000 },
    );
    pipelineOnce(ag.port, 70_000, '127.0.0.42');
    // every upstream slot is taken (the silent backend never frees one); the rest wait their deadline and fail
    const ok = await until(async () => standIn.received() >= upstream * 10 && (await ag.metric('ampguard_tcp_upstream_failures_total{reason="pool_full"}')) > 1000, 40_000);
    if (!ok) console.log(`stand-in received ${standIn.received()}; ampguard: ${[...(await ag.metrics())].filter(([k]) => /tcp|queries_total|dropped/.test(k)).map(([k, v]) => `${k}=${v}`).join(' ')}`, ag.proc.output().slice(-2000));
    expect(ok).toBe(true);
    // never more than pdns_recursor's 10 on one connection (connections ampguard gave up, e.g. on a
    // connect timeout under this load, still count at the stand-in: its total is not the cap's)
    expect(standIn.maxOutstandingPerConnection()).toBe(PIPELINE_DEPTH);
    // the process still does other work: its metrics listener answers
    expect(await ag.metric('ampguard_queries_total{proto="tcp"}')).toBeGreaterThan(upstream * 10);
    // more clients flood while it is saturated: refused in turn, counted
    const before = await ag.metric('ampguard_tcp_upstream_failures_total{reason="pool_full"}');
    const flood = nonReaderFlood({
      port: ag.port, localAddresses: ['127.0.0.43', '127.0.0.44'], query: query('www.example.test', 'A', 1), maxQueries: 500_000, maxMs: 30_000,
    });
    cleanups.push(() => flood.stop());
    expect(await until(async () => (await ag.metric('ampguard_tcp_upstream_failures_total{reason="pool_full"}')) > before + 1000, 20_000)).toBe(true);
    const child = ag.proc.child;
    child.kill('SIGTERM');
    expect(await until(() => child.exitCode !== null || child.signalCode !== null, 5000)).toBe(true);
  });
});
