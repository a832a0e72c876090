// A TCP client's queries through TcpSession with a fake forwarder: only QUERY
// reaches a backend; other opcodes get NOTIMP from ampguard, no larger than
// the query, as over UDP. A prefix's queries in flight, over all its
// connections, stay within its share.
import { describe, expect, it } from 'vitest';
import { TcpSession, type TcpClient } from '../../../src/pipeline/tcp-session.js';
import { BackendPool } from '../../../src/backend/pool.js';
import type { TcpForwarder, TcpRequest } from '../../../src/backend/tcp-forwarder.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import { parseHostPort } from '../../../src/config/address.js';
import { ClientShares } from '../../../src/pipeline/client-shares.js';
import { query } from '../../helpers/wire.js';
import { parseQuery } from '../../../src/dns/query.js';
import { runResponseStages } from '../../../src/pipeline/stages.js';

function setup(shares = new ClientShares(20), address = '198.18.0.10') {
  const env = { settings: compilePolicy(configSchema.parse({})), budgets: new BudgetTable(10), blocks: new BlockTable(10), counters: new Counters() };
  const pool = new BackendPool<unknown>([{ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol: false }], 100);
  const forwarded: TcpRequest[] = [];
  const forwarder = { forward: (_spec: unknown, r: TcpRequest) => (forwarded.push(r), { cancel: () => undefined }) } as unknown as TcpForwarder;
  const written: Buffer[] = [];
  const client: TcpClient = {
    address, port: 4000, localAddress: '127.0.0.1', localPort: 53, family: 4, key: '198.18.0.0/24',
    write: (m) => written.push(m),
    roomForNext: () => void wakes.n++,
  };
  const wakes = { n: 0 };
  return { env, session: new TcpSession(client, env, pool, forwarder, shares, () => 0), forwarded, written, wakes };
}

describe('TcpSession', () => {
  it('forwards QUERY and answers UPDATE and NOTIFY with NOTIMP itself', () => {
    const s = setup();
    s.session.onQuery(query('www.example.test', 'A', 1));
    expect(s.forwarded).toHaveLength(1);
    for (const opcode of [4, 5]) {
      const q = query('example.test', 'SOA', 2);
      q[2] = (q[2]! & 0x87) | (opcode << 3);
      s.session.onQuery(q);
      const a = s.written.at(-1)!;
      expect(a[3]! & 15).toBe(4); // NOTIMP
      expect(a.length).toBeLessThanOrEqual(q.length);
    }
    expect(s.forwarded).toHaveLength(1);
    expect(s.env.counters.localAnswers.notimp).toBe(2);
  });

  it("counts a prefix's queries in flight over all its connections and wakes a waiting connection when one ends", () => {
    const shares = new ClientShares(3);
    const a = setup(shares, '198.18.0.10');
    const b = setup(shares, '198.18.0.11'); // the same /24: the same share
    for (let i = 0; i < 2; i++) a.session.onQuery(query('www.example.test', 'A', i));
    expect(b.session.mayForward()).toBe(true);
    b.session.onQuery(query('www.example.test', 'A', 9));
    // the share is used up: neither connection may hand out another query
    expect(a.session.mayForward()).toBe(false);
    expect(b.session.mayForward()).toBe(false);
    expect(shares.inFlightOf('198.18.0.0/24')).toBe(3);
    // an answer to a's query: b is woken (and a, which answers its client)
    a.forwarded[0]!.onFinished();
    a.forwarded[0]!.onAnswer(Buffer.from(a.forwarded[0]!.query));
    expect(b.wakes.n).toBe(1);
    expect(b.session.mayForward()).toBe(true);
    // a connection that goes away waits no more; its share comes back as the pool lets go of its queries
    b.session.onQuery(query('www.example.test', 'A', 10));
    expect(b.session.mayForward()).toBe(false);
    b.session.close();
    expect(shares.inFlightOf('198.18.0.0/24')).toBe(3);
    for (const r of b.forwarded) r.onFinished();
    expect(shares.inFlightOf('198.18.0.0/24')).toBe(1);
    a.forwarded[1]!.onFinished();
    a.forwarded[1]!.onFailure('timeout');
    expect(b.wakes.n).toBe(1);
    expect(shares.tracked).toBe(0);
  });

  it('counts a ladder follow-up only when the backend answers a truncated question, never a local NOTIMP or a failure', () => {
    const s = setup(new ClientShares(20), '198.18.0.20');
    const big = (id: number): Buffer => query('big.example.test', 'TXT', id, { udpSize: 4096 });
    const udp = (id: number) => ({ query: big(id), parsed: parseQuery(big(id))!, clientAddress: '198.18.0.20', family: 4 as const, proto: 'udp' as const });
    // 20 large replies: 13 in full, then TC answers for big.example.test TXT (rung 2)
    for (let i = 0; i < 20; i++) runResponseStages(udp(i), 900, s.env, 0);
    expect(s.env.budgets.rung('prefix', '198.18.0.20')).toBe(2);
    s.session.onQuery(big(100));
    expect(s.env.counters.tcpFollowUps).toBe(0); // not yet answered
    s.forwarded[0]!.onFailure('reset');
    expect(s.env.counters.tcpFollowUps).toBe(0);
    const notify = big(101);
    notify[2] = (notify[2]! & 0x87) | (4 << 3);
    s.session.onQuery(notify);
    expect(s.env.counters.tcpFollowUps).toBe(0);
    s.session.onQuery(big(102));
    s.forwarded[1]!.onAnswer(Buffer.from(big(102)));
    expect(s.env.counters.tcpFollowUps).toBe(1);
  });
});
