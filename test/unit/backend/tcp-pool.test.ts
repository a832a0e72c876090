// The shared upstream TCP pool with a fake connector: connections per backend
// bounded, queries of many clients pipelined with IDs fresh per connection and
// answered to the right client, PROXY v2 connections per client address within
// the cap, failures and timeouts reported once, IDs O(1) and reused safely.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TcpBackendPool, PIPELINE_DEPTH, type TcpFailure, type TcpOrigin, type TcpRequest } from '../../../src/backend/tcp-pool.js';
import type { UpstreamConnector, UpstreamEvents } from '../../../src/backend/upstream-tcp.js';
import { Counters } from '../../../src/metrics/counters.js';
import { parseHostPort } from '../../../src/config/address.js';
import { parseQuery } from '../../../src/dns/query.js';
import { readId } from '../../../src/dns/header.js';
import { query } from '../../helpers/wire.js';

interface FakeLink {
  readonly header: Buffer | null;
  readonly events: UpstreamEvents;
  readonly written: Buffer[];
  closed: boolean;
}

function fakeConnector(): { connector: UpstreamConnector; links: FakeLink[] } {
  const links: FakeLink[] = [];
  const connector: UpstreamConnector = (_spec, header, _timeout, events) => {
    const link: FakeLink = { header, events, written: [], closed: false };
    links.push(link);
    return {
      write: (m) => link.written.push(Buffer.from(m)),
      close: () => {
        if (link.closed) return;
        link.closed = true;
        events.onClose(null);
      },
    };
  };
  return { connector, links };
}

const spec = (proxyProtocol: boolean) => ({ name: 'b', address: parseHostPort('127.0.0.1:53')!, weight: 1, proxyProtocol });
const origin = (address: string): TcpOrigin => ({ address, port: 40000, localAddress: '127.0.0.1', localPort: 53 });

interface Outcome {
  answers: Buffer[];
  failures: TcpFailure[];
}

function request(name: string, id: number, from: TcpOrigin, out: Outcome): TcpRequest {
  const q = query(name, 'A', id);
  return {
    query: q,
    qEnd: parseQuery(q)!.qEnd,
    origin: from,
    onAnswer: (r) => out.answers.push(Buffer.from(r)),
    onFailure: (f) => out.failures.push(f),
  };
}

/** the backend's answer to a written query: same ID and question, QR set */
const answer = (written: Buffer): Buffer => {
  const r = Buffer.from(written);
  r[2] = r[2]! | 0x80;
  return r;
};

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('TcpBackendPool', () => {
  it('takes only a reply to what was asked, counting every other message by reason and never throwing', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 1, connectTimeoutMs: 1000 }, connector, counters);
    const out: Outcome = { answers: [], failures: [] };
    pool.forward(request('www.example.test', 7, origin('192.0.2.1'), out), 2000);
    const link = links[0]!;
    link.events.onConnect();
    const good = answer(link.written[0]!);
    link.events.onReply(good.subarray(0, 5)); // shorter than a header
    link.events.onReply(Buffer.from(link.written[0]!)); // QR=0: the query echoed
    const stray = Buffer.from(good);
    stray.writeUInt16BE((readId(good) + 1) & 0xffff, 0);
    link.events.onReply(stray); // an ID nobody asked
    link.events.onReply(good.subarray(0, 14)); // header only: shorter than the question
    const other = Buffer.from(good);
    other[13] = 0x7a; // same ID, another name
    link.events.onReply(other);
    expect(out.answers).toHaveLength(0);
    expect(counters.upstreamRejected).toEqual({ short: 2, not_response: 1, unknown_id: 1, question_mismatch: 1 });
    link.events.onReply(good);
    expect(out.answers).toHaveLength(1);
  });

  it('multiplexes 1000 queries of 200 clients over at most the per-backend cap, answers to the right client', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 4, connectTimeoutMs: 1000 }, connector, counters);
    const outs = Array.from({ length: 200 }, (): Outcome => ({ answers: [], failures: [] }));
    for (let i = 0; i < 1000; i++) pool.forward(request(`q${i}.example.test`, i % 65536, origin(`192.0.2.${i % 200}`), outs[i % 200]!), 2000);
    expect(links).toHaveLength(4);
    expect(pool.connections).toBe(4);
    for (const l of links) {
      l.events.onConnect();
      // IDs are unique per connection
      expect(new Set(l.written.map(readId)).size).toBe(l.written.length);
      expect(l.header).toBeNull();
    }
    for (const l of links) for (const w of l.written) l.events.onReply(answer(w));
    for (let c = 0; c < 200; c++) {
      expect(outs[c]!.answers).toHaveLength(5);
      const label = (i: number): Buffer => Buffer.concat([Buffer.from([`q${i}`.length]), Buffer.from(`q${i}`)]);
      const mine = [0, 1, 2, 3, 4].map((k) => label(c + 200 * k));
      for (const a of outs[c]!.answers) expect(mine.some((l) => a.includes(l)), `client ${c}`).toBe(true);
      expect(outs[c]!.failures).toEqual([]);
    }
  });

  it('opens a second connection only past PIPELINE_DEPTH queries on the first', () => {
    const { connector, links } = fakeConnector();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 8, connectTimeoutMs: 1000 }, connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < PIPELINE_DEPTH; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), out), 2000);
    expect(links).toHaveLength(1);
    pool.forward(request('www.example.test', 99, origin('192.0.2.1'), out), 2000);
    expect(links).toHaveLength(2);
  });

  it('ignores replies that are short, of another ID or another question', () => {
    const { connector, links } = fakeConnector();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 1, connectTimeoutMs: 1000 }, connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    pool.forward(request('www.example.test', 7, origin('192.0.2.1'), out), 2000);
    const l = links[0]!;
    const w = l.written[0]!;
    const id = readId(w);
    const header = Buffer.from(w.subarray(0, 12));
    header[2] = header[2]! | 0x80;
    expect(() => l.events.onReply(header)).not.toThrow();
    expect(() => l.events.onReply(Buffer.from([1, 2, 3]))).not.toThrow();
    const other = answer(query('other.example.test', 'A', id));
    l.events.onReply(other);
    const wrongId = answer(w);
    wrongId.writeUInt16BE((id + 1) & 0xffff, 0);
    l.events.onReply(wrongId);
    expect(out.answers).toHaveLength(0);
    l.events.onReply(answer(w));
    expect(out.answers).toHaveLength(1);
  });

  it('with PROXY v2: one connection per client address naming it, within the cap; an idle one is given up; beyond that pool_full', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new TcpBackendPool(spec(true), { connectionsPerBackend: 2, connectTimeoutMs: 1000 }, connector, counters);
    const a: Outcome = { answers: [], failures: [] };
    const b: Outcome = { answers: [], failures: [] };
    const c: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < 30; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), a), 2000);
    pool.forward(request('www.example.test', 1, origin('192.0.2.2'), b), 2000);
    expect(links).toHaveLength(2);
    expect(links[0]!.header!.includes(Buffer.from([192, 0, 2, 1]))).toBe(true);
    expect(links[1]!.header!.includes(Buffer.from([192, 0, 2, 2]))).toBe(true);
    // both connections busy: a third client cannot have one
    pool.forward(request('www.example.test', 1, origin('192.0.2.3'), c), 2000);
    expect(c.failures).toEqual(['pool_full']);
    expect(counters.tcpUpstreamFailures.pool_full).toBe(1);
    // once b's connection is idle, the third client takes its slot
    links[1]!.events.onReply(answer(links[1]!.written[0]!));
    expect(b.answers).toHaveLength(1);
    pool.forward(request('www.example.test', 2, origin('192.0.2.3'), c), 2000);
    expect(links).toHaveLength(3);
    expect(links[1]!.closed).toBe(true);
    expect(pool.connections).toBe(2);
  });

  it('fails the queries of a connection that never came up, once each, and counts it', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 2, connectTimeoutMs: 1000 }, connector, counters);
    const out: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < 5; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), out), 2000);
    links[0]!.events.onClose('connect_timeout');
    expect(out.failures).toEqual(Array(5).fill('connect_timeout'));
    expect(counters.tcpUpstreamFailures.connect_timeout).toBe(1);
    expect(pool.connections).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(out.failures).toHaveLength(5);
  });

  it('re-sends once the queries of an established connection the backend closed', () => {
    const { connector, links } = fakeConnector();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 2, connectTimeoutMs: 1000 }, connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < 3; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), out), 2000);
    links[0]!.events.onConnect();
    links[0]!.events.onClose(null);
    expect(links).toHaveLength(2);
    expect(links[1]!.written).toHaveLength(3);
    links[1]!.events.onConnect();
    links[1]!.events.onClose('reset');
    expect(out.failures).toEqual(['reset', 'reset', 'reset']);
  });

  it('times a query out after its deadline and frees its ID; a cancelled query is never reported', () => {
    const { connector, links } = fakeConnector();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 1, connectTimeoutMs: 1000 }, connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    pool.forward(request('www.example.test', 1, origin('192.0.2.1'), out), 500);
    const ticket = pool.forward(request('www.example.test', 2, origin('192.0.2.1'), out), 500);
    ticket!.cancel();
    vi.advanceTimersByTime(499);
    expect(out.failures).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out.failures).toEqual(['timeout']);
    // late replies find nothing
    for (const w of links[0]!.written) links[0]!.events.onReply(answer(w));
    expect(out.answers).toHaveLength(0);
    // idle, the connection goes after UPSTREAM_IDLE_MS
    vi.advanceTimersByTime(1000);
    expect(links[0]!.closed).toBe(true);
  });

  it('allocates IDs in O(1) with 65536 outstanding on one connection and more queued (no hang)', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new TcpBackendPool(spec(false), { connectionsPerBackend: 1, connectTimeoutMs: 1000 }, connector, counters);
    const out: Outcome = { answers: [], failures: [] };
    const q = request('www.example.test', 1, origin('192.0.2.1'), out);
    for (let i = 0; i < 65537; i++) pool.forward({ ...q, query: Buffer.from(q.query) }, 2000);
    expect(links[0]!.written).toHaveLength(65536);
    expect(new Set(links[0]!.written.map(readId)).size).toBe(65536);
    expect(out.failures).toEqual(['pool_full']);
  });
});
