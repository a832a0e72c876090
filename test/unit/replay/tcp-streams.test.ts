// DNS over TCP from a capture: messages split across segments however the
// client liked, retransmissions taken once, a gap dropping only the partial
// message, and a bounded table (flows and unfinished bytes) whatever arrives.
import { describe, expect, it, vi } from 'vitest';
import { TcpStreams } from '../../../src/replay/tcp-streams.js';
import { framed } from '../../fixtures/capture-writer.js';
import { query } from '../../helpers/wire.js';

const SYN = 0x02;
const PSH = 0x18;

describe('TcpStreams', () => {
  it('reassembles messages split anyhow, takes a retransmission once, and resynchronises after a gap', () => {
    const t = new TcpStreams(10);
    const got: Buffer[] = [];
    const on = (m: Buffer): number => got.push(m);
    const a = framed(query('a.example.test', 'A', 1));
    const b = framed(query('b.example.test', 'A', 2));
    const both = Buffer.concat([a, b]);
    t.segment('c', 99, SYN, Buffer.alloc(0), false, on);
    t.segment('c', 100, PSH, both.subarray(0, 1), false, on); // half a length prefix
    t.segment('c', 101, PSH, both.subarray(1, a.length + 3), false, on); // the rest of a, 2 bytes of b
    t.segment('c', 100, PSH, both.subarray(0, 10), false, on); // a retransmission
    t.segment('c', 101 + a.length + 2, PSH, both.subarray(a.length + 3), false, on);
    expect(got.map((m) => m.readUInt16BE(0))).toEqual([1, 2]);
    // a lost segment: the partial message goes, the next whole one is taken
    t.segment('c', 100 + both.length, PSH, a.subarray(0, 5), false, on);
    t.segment('c', 100 + both.length + 50, PSH, b, false, on);
    expect(got.map((m) => m.readUInt16BE(0))).toEqual([1, 2, 2]);
    expect(t.gaps).toBeGreaterThan(0);
  });

  it('joins a message trickled in a byte per segment once, not once per segment (a crafted capture: linear work)', () => {
    // 65,537 one-byte segments of one 64 KiB query: joining the pending bytes again at each
    // segment copied 2 GB (a 4.6 MB capture took 10 s to replay); each byte is now copied a bounded number of times
    const body = Buffer.alloc(65_535);
    query('big.example.test', 'TXT', 7).copy(body);
    const msg = framed(body);
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      for (const [key, answers, inStep] of [['in-step', false, true], ['mid-way', false, false]] as const) {
        concat.mockClear();
        const t = new TcpStreams(10);
        const got: Buffer[] = [];
        if (inStep) t.segment(key, 99, SYN, Buffer.alloc(0), answers, (m) => got.push(Buffer.from(m)));
        for (let i = 0; i < msg.length; i++) t.segment(key, 100 + i, PSH, msg.subarray(i, i + 1), answers, (m) => got.push(Buffer.from(m)));
        expect(got, key).toHaveLength(1);
        expect(got[0]!.equals(body), key).toBe(true);
        const copied = concat.mock.results.reduce((n, r) => n + (r.value as Buffer).length, 0);
        expect(copied, key).toBeLessThan(4 * msg.length);
      }
    } finally {
      concat.mockRestore();
    }
  });

  it('keeps at most maxFlows flows, the newest, and bounded unfinished bytes', () => {
    const t = new TcpStreams(100);
    const half = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(60_000)]);
    for (let i = 0; i < 2000; i++) t.segment(`f${i}`, 1, PSH, half, false, () => undefined);
    expect(t.size).toBe(100);
  });

  it('picks up a stream mid-way: passes over the rest of a message to the next plausible length prefix, and counts what it passed', () => {
    const t = new TcpStreams(10);
    const got: Buffer[] = [];
    const on = (m: Buffer): number => got.push(Buffer.from(m));
    const a = framed(query('a.example.test', 'A', 1));
    const b = framed(query('b.example.test', 'A', 2));
    const c = framed(query('c.example.test', 'A', 3));
    // no SYN: the capture starts 5 bytes into a, and b's prefix arrives in two segments
    const stream = Buffer.concat([a, b, c]);
    t.segment('m', 1005, PSH, stream.subarray(5, a.length + 1), false, on);
    t.segment('m', 1000 + a.length + 1, PSH, stream.subarray(a.length + 1), false, on);
    expect(got.map((m) => m.readUInt16BE(0))).toEqual([2, 3]);
    expect(t.resyncSkipped).toBe(a.length - 5);
    expect(t.midStream).toBe(1);
  });

  it('reads answers in the server-to-client direction, and resynchronises only on the right direction', () => {
    const t = new TcpStreams(10);
    const answers: number[] = [];
    const reply = (id: number): Buffer => {
      const q = query('x.example.test', 'TXT', id);
      const r = Buffer.concat([q, Buffer.alloc(300, 0x78)]);
      r[2] = r[2]! | 0x80;
      return framed(r);
    };
    const s = Buffer.concat([reply(7).subarray(30), reply(8), reply(9), framed(query('q.example.test', 'A', 10))]);
    t.segment('r', 1, PSH, s, true, (m) => answers.push(m.readUInt16BE(0)));
    // the cut answer is passed over; once in step, the framing is trusted (the reader of each message judges it)
    expect(answers).toEqual([8, 9, 10]);
    const queries: number[] = [];
    t.segment('q', 1, PSH, Buffer.concat([reply(11), framed(query('q.example.test', 'A', 12))]), false, (m) => queries.push(m.readUInt16BE(0)));
    expect(queries).toEqual([12]);
  });
});
