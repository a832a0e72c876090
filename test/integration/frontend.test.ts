// The frontend end to end: a real pdns_recursor serving example.test, ampguard in
// front of it started from a YAML file, and dig / raw sockets as clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startPair, stopPair } from '../helpers/pair.js';
import { dig } from '../helpers/dig.js';
import { query, udpExchange, udpSend, tcpPipeline, decodeMessage } from '../helpers/wire.js';
import { poll } from '../helpers/poll.js';

let recursor: Recursor;
let ag: Ampguard;

beforeAll(async () => {
  ({ rec: recursor, ag } = await startPair({
    backend_timeout_ms: 1000,
    health_check: { qname: 'example.test', qtype: 'SOA', interval_ms: 200, timeout_ms: 300 },
    block: { mode: 'off' },
  }));
});

afterAll(() => stopPair({ rec: recursor, ag }));

describe('UDP', () => {
  it('answers A', async () => {
    const r = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp', '+ignore']);
    expect(r.status).toBe('NOERROR');
    expect(r.raw).toMatch(/www\.example\.test\.\s+\d+\s+IN\s+A\s+198\.18\.0\.80/);
  });

  it('answers ANY over UDP with TC=1 and no answers, over TCP in full', async () => {
    const before = await ag.metric('ampguard_truncated_total{reason="any"}');
    const udp = await dig('127.0.0.1', ag.port, 'example.test', 'ANY', ['+notcp', '+ignore']);
    expect(udp.transport).toBe('UDP');
    expect(udp.flags).toContain('tc');
    expect(udp.answerCount).toBe(0);
    expect(udp.raw).toMatch(/;example\.test\.\s+IN\s+ANY/);
    // one query's counters reach /metrics together (one worker's push): a double count would show at once
    expect(await poll(() => ag.metric('ampguard_truncated_total{reason="any"}'), (v) => v >= before + 1)).toBe(before + 1);

    // The full answer is whatever the recursor gives over TCP (its ANY answer follows its cache).
    const direct = await dig('127.0.0.1', recursor.port, 'example.test', 'ANY', ['+tcp']);
    const tcp = await dig('127.0.0.1', ag.port, 'example.test', 'ANY', ['+tcp']);
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answerCount).toBeGreaterThanOrEqual(1);
    expect(tcp.answerCount).toBe(direct.answerCount);
  });

  it('truncates a ~3000-byte TXT over UDP; TCP carries it whole', async () => {
    const before = await ag.metric('ampguard_truncated_total{reason="size"}');
    const udp = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=4096']);
    expect(udp.flags).toContain('tc');
    expect(udp.answerCount).toBe(0);
    expect(udp.size).toBeLessThan(100);
    expect(await poll(() => ag.metric('ampguard_truncated_total{reason="size"}'), (v) => v >= before + 1)).toBe(before + 1);

    const tcp = await dig('127.0.0.1', ag.port, 'big.example.test', 'TXT', ['+tcp']);
    expect(tcp.answerCount).toBe(1);
    expect(tcp.size).toBeGreaterThan(2900);
  });

  it('gives an EDNS-512 client TC=1 for a ~900-byte answer', async () => {
    const r = await dig('127.0.0.1', ag.port, 'medium.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=512']);
    expect(r.flags).toContain('tc');
    expect(r.answerCount).toBe(0);
    const full = await dig('127.0.0.1', ag.port, 'medium.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=1232']);
    expect(full.flags).not.toContain('tc');
    expect(full.size).toBeGreaterThan(800);
  });

  it('restores the client ID and echoes the question', async () => {
    const ids = [1, 2, 0xbeef, 0xffff];
    const replies = await udpExchange(ag.port, ids.map((id) => query('www.example.test', 'A', id)), ids.length);
    expect(replies.map((r) => decodeMessage(r)?.id).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(ids);
  });
});

describe('TCP', () => {
  it('answers 20 pipelined queries on one connection, each with its own ID', async () => {
    const names = ['www', 'mail', 'ns1', 'medium', 'big'];
    const msgs = Array.from({ length: 20 }, (_, i) => query(`${names[i % names.length]}.example.test`, i % 5 >= 3 ? 'TXT' : 'A', 1000 + i));
    const replies = await tcpPipeline(ag.port, msgs, 20);
    expect(replies).toHaveLength(20);
    const decoded = replies.map((r) => decodeMessage(r));
    expect(decoded.map((d) => d?.id).sort()).toEqual(msgs.map((_, i) => 1000 + i).sort());
    for (const d of decoded) {
      expect(d?.rcode).toBe('NOERROR');
      expect(d?.answers?.length).toBe(1);
      expect(d?.flag_tc).toBe(false);
    }
  });
});

describe('malformed input', () => {
  it('drops and counts a barrage of bad packets and keeps answering', async () => {
    const MALFORMED = 'ampguard_dropped_total{reason="malformed"}';
    const before = await ag.metric(MALFORMED);
    const good = query('www.example.test', 'A', 7);
    const qr = Buffer.from(good);
    qr[2] = qr[2]! | 0x80;
    const twoQuestions = Buffer.from(good);
    twoQuestions.writeUInt16BE(2, 4);
    // a question whose name is a compression pointer to itself
    const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    const badLabel = Buffer.concat([good.subarray(0, 12), Buffer.from([0x80, 0x61, 0, 0, 1, 0, 1])]);
    const fixed = [Buffer.alloc(0), Buffer.from([1, 2, 3]), good.subarray(0, 11), good.subarray(0, good.length - 3), qr, twoQuestions, loop, badLabel];
    // eight datagrams to an idle loopback socket: none is lost, every kind must be counted
    await udpSend(ag.port, fixed);
    expect(await poll(() => ag.metric(MALFORMED), (v) => v >= before + fixed.length)).toBe(before + fixed.length);

    const random = Array.from({ length: 200 }, (_, i) => {
      const b = randomBytes(12 + (i % 60));
      b[2] = b[2]! | 0x80; // QR set: certain to be malformed as a query
      return b;
    });
    const mid = before + fixed.length;
    await udpSend(ag.port, random);
    // 200 at once may overflow the socket's receive buffer on a busy machine: a few
    // lost is loss, not a fault; none counted (or a crash) is
    const after = await poll(() => ag.metric(MALFORMED), (v) => v >= mid + random.length);
    expect(after - mid).toBeGreaterThanOrEqual(random.length * 0.95);
    expect(after - mid).toBeLessThanOrEqual(random.length);
    const r = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp']);
    expect(r.status).toBe('NOERROR');
    expect(ag.proc.child.exitCode).toBeNull();
  });
});

describe('metrics endpoint', () => {
  it('serves /metrics and /healthz', async () => {
    const text = await (await fetch(`http://127.0.0.1:${ag.metricsPort}/metrics`)).text();
    for (const name of ['ampguard_queries_total', 'ampguard_responses_total', 'ampguard_backend_up', 'ampguard_backend_latency_seconds_bucket']) {
      expect(text).toContain(name);
    }
    const health = await fetch(`http://127.0.0.1:${ag.metricsPort}/healthz`);
    expect(health.status).toBe(200);
  });
});
