// The UDP path against hostile input with fake sockets whose send behaves like
// dgram's (it throws ERR_SOCKET_BAD_PORT for port 0): port-0 sources, every bad
// kind of backend reply, non-QUERY opcodes, and the fault barrier itself.
import { describe, expect, it } from 'vitest';
import { UdpPath, type PendingUdp, type UdpReplyTarget } from '../../../src/pipeline/udp-path.js';
import { BackendPool, type Backend } from '../../../src/backend/pool.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import { parseHostPort } from '../../../src/config/address.js';
import { query } from '../../helpers/wire.js';

function setup(config: Record<string, unknown> = {}) {
  let now = 0;
  const env: PolicyEnv<Counters> = {
    settings: compilePolicy(configSchema.parse(config)),
    budgets: new BudgetTable(1000),
    blocks: new BlockTable(1000),
    counters: new Counters(),
  };
  const pool = new BackendPool<PendingUdp>([{ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol: false }], 1000);
  const logged: Record<string, unknown>[] = [];
  const path = new UdpPath(env, pool, () => true, () => now, { error: (o) => logged.push(o as Record<string, unknown>) });
  const backend = pool.backends[0] as Backend<PendingUdp>;
  const forwarded: Buffer[] = [];
  backend.sender = { send: (q: Buffer) => void forwarded.push(Buffer.from(q)) };
  const sent: { wire: Buffer; port: number }[] = [];
  const target: UdpReplyTarget = {
    localAddress: '127.0.0.1',
    localPort: 53,
    send(wire, port) {
      // what dgram does with port 0
      if (port <= 0 || port > 65535) throw Object.assign(new RangeError(`Port should be > 0 and < 65536. Received ${port}.`), { code: 'ERR_SOCKET_BAD_PORT' });
      sent.push({ wire, port });
    },
  };
  const ask = (q: Buffer, port = 5555): void => path.onQuery(q, '198.18.0.10', 4, '198.18.0.10', port, target);
  return { env, path, backend, forwarded, sent, target, logged, ask, tick: (ms: number) => (now += ms) };
}

const asReply = (q: Buffer): Buffer => {
  const r = Buffer.from(q);
  r[2] = r[2]! | 0x80;
  return r;
};

describe('UdpPath, hostile sources', () => {
  it('drops queries from source port 0 before any work, counted, without a throw', () => {
    const s = setup();
    for (const type of ['A', 'ANY']) expect(() => s.ask(query('www.example.test', type, 1), 0)).not.toThrow();
    expect(s.env.counters.dropped.bad_source).toBe(2);
    expect(s.env.counters.dropped.internal_error).toBe(0);
    expect(s.forwarded).toHaveLength(0);
    expect(s.sent).toHaveLength(0);
  });

  it('drops queries from an unspecified address', () => {
    const s = setup();
    s.path.onQuery(query('www.example.test', 'A', 1), '0.0.0.0', 4, '0.0.0.0', 53, s.target);
    s.path.onQuery(query('www.example.test', 'A', 1), '::', 6, '::', 53, s.target);
    expect(s.env.counters.dropped.bad_source).toBe(2);
    expect(s.forwarded).toHaveLength(0);
  });
});

describe('UdpPath, replies that fail validation', () => {
  it('rejects short, header-only, QR=0, unknown-ID and other-question replies, counted, the query kept', () => {
    const s = setup();
    s.ask(query('www.example.test', 'A', 33));
    const fwd = s.forwarded[0]!;
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), 'short'],
      [asReply(fwd).subarray(0, 11), 'short'],
      [Buffer.concat([fwd.subarray(0, 2), Buffer.from([0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0])]), 'short'], // a 12-byte FORMERR
      [asReply(fwd).subarray(0, 20), 'short'],
      [Buffer.from(fwd), 'not_response'],
      [(() => { const r = asReply(fwd); r[1] = r[1]! ^ 1; return r; })(), 'unknown_id'],
      [(() => { const r = asReply(fwd); r[14] = 0x7a; return r; })(), 'question_mismatch'],
    ];
    for (const [reply, reason] of cases) {
      const c = s.env.counters.upstreamRejected;
      const before = c[reason as keyof typeof c];
      expect(() => s.path.onReply(s.backend, reply)).not.toThrow();
      expect(c[reason as keyof typeof c], reason).toBe(before + 1);
    }
    expect(s.env.counters.dropped.internal_error).toBe(0);
    expect(s.backend.inflight.size).toBe(1);
    s.path.onReply(s.backend, asReply(fwd));
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]!.wire.readUInt16BE(0)).toBe(33);
  });
});

describe('UdpPath, opcodes', () => {
  it('answers UPDATE, NOTIFY, IQUERY, STATUS with NOTIMP no larger than the query, never forwarded', () => {
    const s = setup();
    for (const opcode of [1, 2, 4, 5, 15]) {
      const q = query('example.test', 'SOA', 100 + opcode, { udpSize: 4096 });
      q[2] = (q[2]! & 0x87) | (opcode << 3);
      s.ask(q);
      const r = s.sent.at(-1)!.wire;
      expect(r.readUInt16BE(0)).toBe(100 + opcode);
      expect(r[3]! & 0x0f).toBe(4);
      expect((r[2]! >> 3) & 0x0f).toBe(opcode);
      expect(r[2]! & 0x80).toBe(0x80);
      expect(r.length).toBeLessThanOrEqual(q.length);
    }
    expect(s.forwarded).toHaveLength(0);
    expect(s.env.counters.localAnswers.notimp).toBe(5);
    s.ask(query('example.test', 'SOA', 1));
    expect(s.forwarded).toHaveLength(1);
  });

  it('a blocked client gets nothing, not even NOTIMP', () => {
    const s = setup();
    s.env.blocks.add('198.18.0.10', 60_000);
    const q = query('example.test', 'SOA', 1);
    q[2] = (q[2]! & 0x87) | (5 << 3);
    s.ask(q);
    expect(s.sent).toHaveLength(0);
    expect(s.env.counters.dropped.blocked).toBe(1);
  });
});

describe('UdpPath, the fault barrier', () => {
  it('drops a unit whose send throws, counts internal_error, logs once a second, and carries on', () => {
    const s = setup();
    const explode: UdpReplyTarget = { localAddress: '127.0.0.1', localPort: 53, send: () => { throw new Error('send exploded'); } };
    const anyQ = query('example.test', 'ANY', 9);
    for (let i = 0; i < 100; i++) expect(() => s.path.onQuery(Buffer.from(anyQ), '198.18.0.10', 4, '198.18.0.10', 5555, explode)).not.toThrow();
    expect(s.env.counters.dropped.internal_error).toBe(100);
    expect(s.logged).toHaveLength(1);
    expect(s.logged[0]).toMatchObject({ unit: 'udp_query', err: 'send exploded' });
    s.ask(Buffer.from(anyQ));
    expect(s.sent).toHaveLength(1);
  });

  it('a reply whose send throws is one dropped unit', () => {
    const s = setup();
    const explode: UdpReplyTarget = { localAddress: '127.0.0.1', localPort: 53, send: () => { throw new Error('late send'); } };
    s.path.onQuery(query('www.example.test', 'A', 4), '198.18.0.10', 4, '198.18.0.10', 5555, explode);
    expect(() => s.path.onReply(s.backend, asReply(s.forwarded[0]!))).not.toThrow();
    expect(s.env.counters.dropped.internal_error).toBe(1);
    expect(s.backend.inflight.size).toBe(0);
  });

  it('the sweep goes on past a SERVFAIL whose send throws', () => {
    const s = setup({ backend_timeout_ms: 100 });
    const explode: UdpReplyTarget = { localAddress: '127.0.0.1', localPort: 53, send: () => { throw new Error('servfail send'); } };
    for (let i = 0; i < 10; i++) s.path.onQuery(query('www.example.test', 'A', i), '198.18.0.10', 4, '198.18.0.10', 5555, i % 2 ? explode : s.target);
    s.tick(1000);
    expect(() => s.path.sweep()).not.toThrow();
    expect(s.backend.inflight.size).toBe(0);
    expect(s.env.counters.dropped.backend_timeout).toBe(10);
    expect(s.env.counters.dropped.internal_error).toBe(5);
    expect(s.sent).toHaveLength(5);
  });
});
