// The UDP path with its real stages and tables and fake sockets: a million
// distinct sources leave the tables at their bounds and every query answered;
// an offender's tripping reply is dropped and its next query never forwarded.
import { describe, expect, it } from 'vitest';
import { UdpPath, type PendingUdp, type UdpReplyTarget } from '../../../src/pipeline/udp-path.js';
import { BackendPool, type Backend } from '../../../src/backend/pool.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { Offender } from '../../../src/policy/verdict.js';
import { parseHostPort } from '../../../src/config/address.js';
import { query } from '../../helpers/wire.js';

function setup(replyBytes: number, maxTracked = 100_000, config: object = {}) {
  let now = 0;
  const env: PolicyEnv<Counters> = {
    settings: compilePolicy(configSchema.parse(config)),
    budgets: new BudgetTable(maxTracked),
    blocks: new BlockTable(100_000),
    counters: new Counters(),
  };
  const pool = new BackendPool<PendingUdp>([{ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol: false }], 65535);
  const offenders: Offender[] = [];
  const path = new UdpPath(env, pool, (o, t) => {
    offenders.push(o);
    env.blocks.add(o.prefix, t + 60_000);
    return true;
  }, () => now);
  const backend = pool.backends[0] as Backend<PendingUdp>;
  let forwarded = 0;
  // The backend answers at once: the query, turned into a response, padded to replyBytes.
  backend.sender = {
    send(q: Buffer) {
      forwarded++;
      const reply = Buffer.alloc(Math.max(replyBytes, q.length));
      q.copy(reply);
      reply[2] = reply[2]! | 0x80;
      path.onReply(backend, reply);
    },
  };
  const sent: { port: number; address: string; length: number }[] = [];
  let sentCount = 0;
  const target: UdpReplyTarget = {
    localAddress: '127.0.0.1',
    localPort: 53,
    send(wire, port, address) {
      sentCount++;
      if (sent.length < 100) sent.push({ port, address, length: wire.length });
    },
  };
  return { env, path, target, offenders, sent, stats: () => ({ forwarded, sentCount }), tick: (ms: number) => (now += ms) };
}

const ONE_STEP = { policy: { ladder: { enabled: false } } };

describe('UdpPath', () => {
  it('keeps a million distinct sources within max_tracked and answers every one', () => {
    const s = setup(900);
    const q = query('medium.example.test', 'TXT', 1, { udpSize: 1232 });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      s.path.onQuery(Buffer.from(q), address, 4, address, 40000, s.target);
      if (i % 1000 === 0) s.tick(1);
    }
    expect(s.stats().sentCount).toBe(1_000_000);
    expect(s.env.budgets.size).toBe(100_000);
    // 256 large replies to each /24 empty its aggregate budget: the rest of each /24 gets TC answers
    expect(s.env.counters.largeResponses + s.env.counters.truncated.budget).toBe(1_000_000);
    expect(s.env.counters.truncated.budget).toBeGreaterThan(0);
    expect(s.offenders).toHaveLength(0);
    // bounded: the tables hold 100k prefixes, not 1M (a generous ceiling, not a measurement)
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(300 * 1024 * 1024);
  });

  it('on the ladder: TC answers over budget, then the tripping reply dropped once no TCP came back', () => {
    const s = setup(1200);
    const q = query('medium.example.test', 'TXT', 77, { udpSize: 1232 });
    for (let i = 0; i < 10; i++) s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.sent.map((x) => x.length)).toEqual(Array(10).fill(1200));
    // one query every 100 ms: the first TC at t=0 opens a 2 s window
    for (let i = 0; i < 20; i++) {
      s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
      s.tick(100);
    }
    expect(s.offenders).toHaveLength(0);
    expect(s.env.counters.truncated.budget).toBeGreaterThanOrEqual(18);
    expect(s.sent.slice(10).filter((x) => x.length < 100)).toHaveLength(s.env.counters.truncated.budget);
    const before = s.stats().sentCount;
    s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.stats().sentCount).toBe(before);
    expect(s.offenders).toEqual([expect.objectContaining({ prefix: '198.18.0.10', level: 'prefix', cause: 'no_followup' })]);
  });

  it('drops the tripping reply, blocks, and forwards nothing more for the offender', () => {
    const s = setup(1200, 100_000, ONE_STEP);
    const q = query('medium.example.test', 'TXT', 77, { udpSize: 1232 });
    for (let i = 0; i < 10; i++) s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.stats().sentCount).toBe(10);
    s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.stats().sentCount).toBe(10);
    expect(s.offenders).toEqual([{ address: '198.18.0.10', prefix: '198.18.0.10', family: 4, charged: expect.any(Number), level: 'prefix', cause: 'over_budget' }]);
    expect(s.env.counters.dropped.rate).toBe(1);
    const forwarded = s.stats().forwarded;
    s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.stats().forwarded).toBe(forwarded);
    expect(s.env.counters.dropped.blocked).toBe(1);
    // replies only ever go back to the querying address and port, with the client's ID
    expect(new Set(s.sent.map((x) => `${x.address}:${x.port}`))).toEqual(new Set(['198.18.0.10:5555']));
  });

  it('ignores a reply whose question is not the one asked', () => {
    const s = setup(100);
    const pool = (s.path as unknown as { pool: BackendPool<PendingUdp> }).pool;
    const backend = pool.backends[0] as Backend<PendingUdp>;
    backend.sender = {
      send(q: Buffer) {
        const reply = Buffer.from(q);
        reply[2] = reply[2]! | 0x80;
        reply[13] = 0x7a; // another name, same ID
        s.path.onReply(backend, reply);
      },
    };
    s.path.onQuery(query('www.example.test', 'A', 5), '198.18.0.10', 4, '198.18.0.10', 5555, s.target);
    expect(s.stats().sentCount).toBe(0);
    expect(backend.inflight.size).toBe(1);
  });
});

describe('IPv4 clients of a dual-stack socket', () => {
  it('are charged and blocked as IPv4 /32s, and answered at their mapped address', () => {
    const s = setup(1200, 100_000, ONE_STEP);
    const q = query('medium.example.test', 'TXT', 9, { udpSize: 1232 });
    for (let i = 0; i < 11; i++) s.path.onQuery(Buffer.from(q), '198.18.0.10', 4, '::ffff:198.18.0.10', 5555, s.target);
    expect(s.offenders[0]).toMatchObject({ prefix: '198.18.0.10', family: 4 });
    expect(new Set(s.sent.map((x) => x.address))).toEqual(new Set(['::ffff:198.18.0.10']));
    // a neighbour is not affected, as it would be if both shared the budget of ::/64
    s.path.onQuery(Buffer.from(q), '198.18.0.11', 4, '::ffff:198.18.0.11', 5555, s.target);
    expect(s.stats().sentCount).toBe(11);
  });
});

describe('UdpPath batches (batched UDP)', () => {
  it('reads the clock once for a batch of queries and their replies, and once per datagram outside a batch', () => {
    const env: PolicyEnv<Counters> = {
      settings: compilePolicy(configSchema.parse({})),
      budgets: new BudgetTable(1000),
      blocks: new BlockTable(1000),
      counters: new Counters(),
    };
    const pool = new BackendPool<PendingUdp>([{ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol: false }], 65535);
    let readings = 0;
    const path = new UdpPath(env, pool, () => true, () => ++readings);
    const backend = pool.backends[0] as Backend<PendingUdp>;
    const sentAt: number[] = [];
    const forwarded: Buffer[] = [];
    backend.sender = { send: (q: Buffer) => void forwarded.push(Buffer.from(q)) };
    backend.observeLatency = (s) => void sentAt.push(s);
    let answered = 0;
    const target: UdpReplyTarget = { localAddress: '127.0.0.1', localPort: 53, send: () => void answered++ };
    const q = query('www.example.test', 'A', 7);
    path.beginBatch();
    for (let i = 0; i < 5; i++) path.onQuery(Buffer.from(q), `198.18.0.${i + 1}`, 4, `198.18.0.${i + 1}`, 4000 + i, target);
    path.endBatch();
    expect(readings).toBe(1);
    path.beginBatch();
    for (const f of forwarded) {
      const reply = Buffer.from(f);
      reply[2] = reply[2]! | 0x80;
      path.onReply(backend, reply);
    }
    path.endBatch();
    expect(readings).toBe(2);
    expect(answered).toBe(5);
    // each reply's latency: the batch's reading minus its query's
    expect(sentAt.every((s) => s === (2 - 1) / 1000)).toBe(true);
    path.onQuery(Buffer.from(q), '198.18.0.9', 4, '198.18.0.9', 4009, target);
    path.onQuery(Buffer.from(q), '198.18.0.10', 4, '198.18.0.10', 4010, target);
    expect(readings).toBe(4);
  });
});
