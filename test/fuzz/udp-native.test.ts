// Fuzz of the batched-UDP addon's sockets (docs/performance.md) with real datagrams on
// loopback: fuzzed client datagrams (queries, mutations, noise, empty, longer than a
// receive slot) from IPv4 and IPv6 clients to a native IPv4 listener and a native
// dual-stack [::] listener, forwarded through a native upstream socket to a stand-in
// backend that answers with fuzzed replies (right, cut, padded, flipped, wrong ID).
// After each run: every datagram reached the path exactly once (the addon counted it
// and so did the path), and the fault barrier never fired. Run against the ASan build
// by `npm run test:asan`, this is the addon's memory-safety test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import fc from 'fast-check';
import { loadNative, STAT } from '../../src/native/index.js';
import { NativeUdpListener } from '../../src/listener/udp-native.js';
import { NativeUdpUpstream } from '../../src/backend/upstream-udp-native.js';
import { UdpPath, type PendingUdp } from '../../src/pipeline/udp-path.js';
import { BackendPool } from '../../src/backend/pool.js';
import { compilePolicy } from '../../src/config/compile.js';
import { configSchema } from '../../src/config/schema.js';
import { BudgetTable } from '../../src/policy/budgets.js';
import { BlockTable } from '../../src/policy/block-table.js';
import { Counters } from '../../src/metrics/counters.js';
import type { PolicyEnv } from '../../src/policy/env.js';
import { parseHostPort } from '../../src/config/address.js';
import { createLogger } from '../../src/log/logger.js';
import { waitFor } from '../helpers/poll.js';
import { clientMessage, fuzzParams, replyShape, shapeReply, type ReplyShape } from './arbitraries.js';

const binding = loadNative().binding;
if (!loadNative().binding) console.log(`native UDP tests skipped: ${loadNative().reason}`);

const datagram = fc.oneof(
  { weight: 8, arbitrary: clientMessage },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 9000 }).map((n) => Buffer.alloc(n, 0xab)) },
);
// 0: IPv4 client -> IPv4 listener; 1: IPv4 client -> [::] listener (mapped); 2: IPv6 client -> [::] listener
const send = fc.record({ msg: datagram, route: fc.nat({ max: 2 }), shape: replyShape });

async function until(cond: () => boolean, what: string): Promise<void> {
  // interval 0: the next turn of the event loop, as the sockets answer within one
  if (!(await waitFor(cond, 5_000, 0))) throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(binding === null)('fuzz: the native UDP sockets', () => {
  const env: PolicyEnv<Counters> = {
    settings: compilePolicy(configSchema.parse({ backend_timeout_ms: 200 })),
    budgets: new BudgetTable(64),
    blocks: new BlockTable(64),
    counters: new Counters(),
  };
  const log = createLogger('silent');
  const shapes: ReplyShape[] = [];
  const backendSocket = dgram.createSocket('udp4');
  const clients = [dgram.createSocket('udp4'), dgram.createSocket('udp6')];
  let listeners: NativeUdpListener[] = [];
  let upstream: NativeUdpUpstream;
  let path: UdpPath;
  let sweep: NodeJS.Timeout;

  beforeAll(async () => {
    await new Promise<void>((r) => backendSocket.bind(0, '127.0.0.1', r));
    // the stand-in backend answers each forwarded query with the next fuzzed shape
    backendSocket.on('message', (q, rinfo) => {
      const shape = shapes.shift();
      if (shape) backendSocket.send(shapeReply(q, shape), rinfo.port, rinfo.address);
    });
    const spec = { name: 'b', address: parseHostPort(`127.0.0.1:${backendSocket.address().port}`)!, weight: 1, proxyProtocol: false };
    const pool = new BackendPool<PendingUdp>([spec], 256);
    path = new UdpPath(env, pool, () => true, () => performance.now());
    upstream = new NativeUdpUpstream(spec, (reply) => path.onReply(pool.backends[0]!, reply), log, binding!);
    await upstream.start();
    pool.backends[0]!.sender = upstream;
    listeners = [
      new NativeUdpListener({ host: '127.0.0.1', port: 0, family: 4 }, path, log, binding!),
      new NativeUdpListener({ host: '::', port: 0, family: 6 }, path, log, binding!),
    ];
    for (const l of listeners) await l.start();
    for (const c of clients) await new Promise<void>((r) => c.bind(0, r));
    for (const c of clients) c.on('message', () => undefined);
    sweep = setInterval(() => path.sweep(), 50);
  });

  afterAll(async () => {
    clearInterval(sweep);
    for (const l of listeners) await l.close();
    upstream?.close();
    for (const c of clients) c.close();
    backendSocket.close();
  });

  const received = (): number => listeners.reduce((n, l) => n + l.stats()[STAT.recvPackets]!, 0);

  it('every datagram reaches the path once, nothing throws, through both listeners and the upstream socket', async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(send, { minLength: 1, maxLength: 16 }), async (ops) => {
        const c = env.counters;
        const before = { received: received(), queries: c.queries.udp, internal: c.dropped.internal_error };
        for (const o of ops) {
          shapes.push(o.shape);
          const [client, host, listener] =
            o.route === 0 ? [clients[0]!, '127.0.0.1', listeners[0]!] : o.route === 1 ? [clients[0]!, '127.0.0.1', listeners[1]!] : [clients[1]!, '::1', listeners[1]!];
          client.send(o.msg, listener.boundPort(), host);
        }
        sent += ops.length;
        await until(() => received() - before.received >= ops.length && c.queries.udp - before.queries >= ops.length, `${ops.length} datagrams`);
        if (received() - before.received !== ops.length) throw new Error(`addon received ${received() - before.received} of ${ops.length}`);
        if (c.queries.udp - before.queries !== ops.length) throw new Error(`path saw ${c.queries.udp - before.queries} of ${ops.length}`);
        if (c.dropped.internal_error !== before.internal) throw new Error('the fault barrier fired');
        shapes.length = 0;
      }),
      fuzzParams(400, 0.05),
    );
    expect(env.counters.queries.udp).toBe(sent);
  });
});
