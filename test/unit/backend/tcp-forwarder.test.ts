// The shared upstream TCP pool with a fake connector: connections per backend
// bounded, queries of many clients pipelined with IDs fresh per connection and
// answered to the right client, PROXY v2 connections per client address within
// the cap, failures and timeouts reported once, IDs O(1) and reused safely.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendConnections, PIPELINE_DEPTH, type TcpFailure, type TcpOrigin, type TcpForwarderSettings, type TcpRequest } from '../../../src/backend/tcp-forwarder.js';
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
const origin = (address: string, key = address): TcpOrigin => ({ address, port: 40000, localAddress: '127.0.0.1', localPort: 53, key });
const settings = (connectionsPerBackend: number, more: Partial<TcpForwarderSettings> = {}): TcpForwarderSettings => ({
  connectionsPerBackend, connectionsPerClient: 2, connectTimeoutMs: 1000, queueTimeoutMs: 1000, ...more,
});

interface Outcome {
  answers: Buffer[];
  failures: TcpFailure[];
  finished?: number;
}

function request(name: string, id: number, from: TcpOrigin, out: Outcome): TcpRequest {
  const q = query(name, 'A', id);
  return {
    query: q,
    qEnd: parseQuery(q)!.qEnd,
    origin: from,
    onAnswer: (r) => out.answers.push(Buffer.from(r)),
    onFailure: (f) => out.failures.push(f),
    onFinished: () => void (out.finished = (out.finished ?? 0) + 1),
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

describe('BackendConnections', () => {
  it('takes only a reply to what was asked, counting every other message by reason and never throwing', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(false), settings(1), connector, counters);
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
    const pool = new BackendConnections(spec(false), settings(4), connector, counters);
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

  it('opens a second connection only past PIPELINE_DEPTH queries on the first: a new query is never written behind them', () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(false), settings(8), connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < PIPELINE_DEPTH; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), out), 2000);
    expect(links).toHaveLength(1);
    pool.forward(request('www.example.test', 99, origin('192.0.2.1'), out), 2000);
    expect(links).toHaveLength(2);
  });

  it('ignores replies that are short, of another ID or another question', () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(false), settings(1), connector, new Counters());
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

  it('with PROXY v2: one connection per client address naming it, within the cap; beyond it a query waits for the least recently used idle one', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(true), settings(2), connector, counters);
    const a: Outcome = { answers: [], failures: [] };
    const b: Outcome = { answers: [], failures: [] };
    const c: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < PIPELINE_DEPTH; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), a), 2000);
    pool.forward(request('www.example.test', 1, origin('192.0.2.2'), b), 2000);
    expect(links).toHaveLength(2);
    expect(links[0]!.header!.includes(Buffer.from([192, 0, 2, 1]))).toBe(true);
    expect(links[1]!.header!.includes(Buffer.from([192, 0, 2, 2]))).toBe(true);
    // both connections busy: a third client waits, it is not refused
    pool.forward(request('www.example.test', 1, origin('192.0.2.3'), c), 2000);
    expect(c.failures).toEqual([]);
    expect(pool.queued).toBe(1);
    // b's connection idle: the third client takes its slot at once
    links[1]!.events.onReply(answer(links[1]!.written[0]!));
    expect(b.answers).toHaveLength(1);
    expect(links).toHaveLength(3);
    expect(links[1]!.closed).toBe(true);
    expect(links[2]!.header!.includes(Buffer.from([192, 0, 2, 3]))).toBe(true);
    expect(pool.connections).toBe(2);
    expect(pool.queued).toBe(0);
    expect(counters.tcpUpstreamFailures.pool_full).toBe(0);
  });

  it('gives up the least recently used idle PROXY v2 connection, not the first opened', () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(true), settings(2), connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    pool.forward(request('www.example.test', 1, origin('192.0.2.1'), out), 2000);
    pool.forward(request('www.example.test', 2, origin('192.0.2.2'), out), 2000);
    links[0]!.events.onReply(answer(links[0]!.written[0]!));
    links[1]!.events.onReply(answer(links[1]!.written[0]!));
    // 192.0.2.1 asks again: now 192.0.2.2's connection, opened after it, is the least recently used
    pool.forward(request('www.example.test', 3, origin('192.0.2.1'), out), 2000);
    links[0]!.events.onReply(answer(links[0]!.written[1]!));
    pool.forward(request('www.example.test', 4, origin('192.0.2.3'), out), 2000);
    expect(links).toHaveLength(3);
    expect(links[1]!.closed).toBe(true);
    expect(links[0]!.closed).toBe(false);
  });

  it("with PROXY v2 a prefix holds at most its share of the connections; its further addresses wait for one of its own", () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(true), settings(8, { connectionsPerClient: 2 }), connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    const v6 = (i: number): TcpOrigin => origin(`2001:db8:1:2::${i}`, '2001:db8:1:2::/64');
    for (let i = 1; i <= 3; i++) pool.forward(request('www.example.test', i, v6(i), out), 2000);
    expect(links).toHaveLength(2);
    expect(pool.queued).toBe(1);
    // another prefix is not held up by it
    pool.forward(request('www.example.test', 9, origin('192.0.2.9'), out), 2000);
    expect(links).toHaveLength(3);
    // one of the /64's connections idle: the waiting address gets its slot
    links[0]!.events.onReply(answer(links[0]!.written[0]!));
    expect(links[0]!.closed).toBe(true);
    expect(links).toHaveLength(4);
    expect(pool.queued).toBe(0);
  });

  it('fails a query that no connection could carry within upstream_queue_timeout_ms as pool_full, not before', () => {
    const { connector } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(true), settings(1, { queueTimeoutMs: 300 }), connector, counters);
    const a: Outcome = { answers: [], failures: [] };
    const c: Outcome = { answers: [], failures: [] };
    pool.forward(request('www.example.test', 1, origin('192.0.2.1'), a), 2000);
    pool.forward(request('www.example.test', 1, origin('192.0.2.3'), c), 2000);
    vi.advanceTimersByTime(299);
    expect(c.failures).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(c.failures).toEqual(['pool_full']);
    expect(counters.tcpUpstreamFailures.pool_full).toBe(1);
    expect(pool.queued).toBe(0);
    // with no wait allowed it fails at once
    const now = new BackendConnections(spec(true), settings(1, { queueTimeoutMs: 0 }), connector, counters);
    now.forward(request('www.example.test', 1, origin('192.0.2.1'), a), 2000);
    expect(now.forward(request('www.example.test', 1, origin('192.0.2.3'), c), 2000)).toBeNull();
    expect(c.failures).toEqual(['pool_full', 'pool_full']);
  });

  it('a cancelled query at the backend keeps its slot until its answer or deadline: the next is not written behind it', () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(false), settings(1), connector, new Counters());
    const gone: Outcome = { answers: [], failures: [] };
    const other: Outcome = { answers: [], failures: [] };
    const tickets = Array.from({ length: PIPELINE_DEPTH }, (_, i) => pool.forward(request('www.example.test', i, origin('192.0.2.1'), gone), 2000));
    // the client goes away: nothing is reported to it, and the backend still works on all 10
    for (const t of tickets) t!.cancel();
    pool.forward(request('other.example.test', 1, origin('192.0.2.2'), other), 2000);
    const link = links[0]!;
    expect(link.written).toHaveLength(PIPELINE_DEPTH);
    expect(gone.finished ?? 0).toBe(0);
    // one of them answered: its slot goes to the waiting query, the answer to nobody
    link.events.onReply(answer(link.written[0]!));
    expect(link.written).toHaveLength(PIPELINE_DEPTH + 1);
    expect(gone.answers).toHaveLength(0);
    expect(gone.finished).toBe(1);
    // the rest expire silently, each finished once
    vi.advanceTimersByTime(2000);
    expect(gone.failures).toEqual([]);
    expect(gone.finished).toBe(PIPELINE_DEPTH);
    expect(other.failures).toEqual(['timeout']);
  });

  it('a cancelled waiting query leaves the queue and is never reported', () => {
    const { connector, links } = fakeConnector();
    const pool = new BackendConnections(spec(false), settings(1), connector, new Counters());
    const out: Outcome = { answers: [], failures: [] };
    for (let i = 0; i < PIPELINE_DEPTH; i++) pool.forward(request('www.example.test', i, origin('192.0.2.1'), out), 2000);
    const waiting = pool.forward(request('www.example.test', 99, origin('192.0.2.2'), out), 2000);
    expect(pool.queued).toBe(1);
    waiting!.cancel();
    expect(pool.queued).toBe(0);
    links[0]!.events.onReply(answer(links[0]!.written[0]!));
    expect(links[0]!.written).toHaveLength(PIPELINE_DEPTH);
    vi.advanceTimersByTime(5000);
    expect(out.failures).toHaveLength(PIPELINE_DEPTH - 1); // the unanswered ones time out; the cancelled one is silent
  });

  it('fails the queries of a connection that never came up, once each, and counts it', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(false), settings(2), connector, counters);
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
    const pool = new BackendConnections(spec(false), settings(2), connector, new Counters());
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
    const pool = new BackendConnections(spec(false), settings(1), connector, new Counters());
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

  it('never writes a query behind PIPELINE_DEPTH others on a connection: the rest wait, and take turns by prefix as slots free', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(false), settings(1), connector, counters);
    const slow: Outcome = { answers: [], failures: [] };
    const fast: Outcome = { answers: [], failures: [] };
    // a slow client fills the only connection and has 20 more waiting; then another client asks
    for (let i = 0; i < PIPELINE_DEPTH + 20; i++) pool.forward(request(`s${i}.example.test`, i, origin('192.0.2.1'), slow), 5000);
    pool.forward(request('fast.example.test', 1, origin('192.0.2.2'), fast), 5000);
    const link = links[0]!;
    expect(link.written).toHaveLength(PIPELINE_DEPTH);
    expect(pool.queued).toBe(21);
    // one slot frees: the first in turn is the slow prefix's, the next the other client's, not 20 slow ones later
    link.events.onReply(answer(link.written[0]!));
    link.events.onReply(answer(link.written[1]!));
    expect(link.written).toHaveLength(PIPELINE_DEPTH + 2);
    expect(link.written.at(-1)!.includes(Buffer.from('fast'))).toBe(true);
    link.events.onReply(answer(link.written.at(-1)!));
    expect(fast.answers).toHaveLength(1);
    // IDs stay unique among what is outstanding, reused last
    const outstanding = link.written.slice(-PIPELINE_DEPTH).map(readId);
    expect(new Set(outstanding).size).toBe(PIPELINE_DEPTH);
    expect(counters.tcpUpstreamFailures.pool_full).toBe(0);
  });

  it('keeps the IDs of one connection apart past the whole ID space: an answered query gives its ID back, last in line', () => {
    const { connector, links } = fakeConnector();
    const counters = new Counters();
    const pool = new BackendConnections(spec(false), settings(1), connector, counters);
    const out: Outcome = { answers: [], failures: [] };
    const from = origin('192.0.2.1');
    const template = request('www.example.test', 0, from, out);
    const rounds = Math.ceil(70_000 / PIPELINE_DEPTH);
    let clashes = 0;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < PIPELINE_DEPTH; i++) pool.forward({ ...template, query: Buffer.from(template.query) }, 2000);
      const link = links[0]!;
      const batch = link.written.slice(-PIPELINE_DEPTH);
      if (new Set(batch.map(readId)).size !== PIPELINE_DEPTH) clashes++;
      // answered in reverse: the IDs come back in that order
      for (const w of [...batch].reverse()) link.events.onReply(answer(w));
    }
    const ids = links[0]!.written.map(readId);
    expect(links).toHaveLength(1);
    expect(clashes).toBe(0);
    expect(out.answers).toHaveLength(rounds * PIPELINE_DEPTH);
    expect(out.failures).toEqual([]);
    // every ID once before any comes back, then the first ones in the order they were answered
    expect(new Set(ids.slice(0, 65536)).size).toBe(65536);
    expect(ids.slice(65536, 65536 + PIPELINE_DEPTH)).toEqual([...ids.slice(0, PIPELINE_DEPTH)].reverse());
    expect(counters.upstreamRejected.unknown_id).toBe(0);
  });
});
