import { describe, expect, it } from 'vitest';
import { parseQuery } from '../../../src/dns/query.js';
import { buildServfail, buildTruncated } from '../../../src/dns/local-answer.js';
import { decodeMessage, encodeMessage } from '../../../src/dns/codec.js';
import { query } from '../../helpers/wire.js';

describe('parseQuery', () => {
  it('reads ID, type, question end and EDNS size without a full decode', () => {
    const q = query('www.example.test', 'ANY', 0x1234, { udpSize: 4096 });
    const p = parseQuery(q);
    expect(p).toMatchObject({ id: 0x1234, qtype: 255, qEnd: 12 + 18 + 4, ednsUdpSize: 4096 });
  });

  it('reports no EDNS when there is no OPT record', () => {
    expect(parseQuery(query('example.test', 'A', 1))?.ednsUdpSize).toBe(0);
  });

  it('finds the OPT record after other additional records', () => {
    const q = encodeMessage({
      type: 'query', id: 9, flags: 0x100, questions: [{ name: 'a.test', type: 'A', class: 'IN' }],
      additionals: [{ type: 'A', name: 'x.test', ttl: 1, class: 'IN', data: '192.0.2.1' }, { type: 'OPT', name: '.', udpPayloadSize: 1400 } as never],
    });
    expect(parseQuery(q)?.ednsUdpSize).toBe(1400);
  });

  it('parses the root name', () => {
    expect(parseQuery(query('.', 'NS', 2))?.qEnd).toBe(12 + 1 + 4);
  });

  const good = query('www.example.test', 'A', 7);
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  it.each([
    ['empty', Buffer.alloc(0)],
    ['shorter than a header', good.subarray(0, 11)],
    ['header only', good.subarray(0, 12)],
    ['cut in the question', good.subarray(0, good.length - 2)],
    ['QR set', mutate((b) => (b[2] = b[2]! | 0x80))],
    ['QDCOUNT 0', mutate((b) => b.writeUInt16BE(0, 4))],
    ['QDCOUNT 2', mutate((b) => b.writeUInt16BE(2, 4))],
    ['compression loop', Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])],
    ['forward pointer', Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 40, 0, 1, 0, 1])])],
    ['reserved label type', Buffer.concat([good.subarray(0, 12), Buffer.from([0x80, 0x61, 0, 0, 1, 0, 1])])],
    ['label past the end', Buffer.concat([good.subarray(0, 12), Buffer.from([0x3f, 0x61])])],
  ])('returns null for %s', (_name, buf) => {
    expect(parseQuery(buf)).toBeNull();
  });

  it('never throws on random bytes', () => {
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.alloc(i % 80);
      for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 17 + (i >> 3)) & 0xff;
      expect(() => parseQuery(b)).not.toThrow();
    }
  });
});

describe('local answers', () => {
  it('builds TC=1 with the question and an OPT echoing DO', () => {
    const q = query('big.example.test', 'TXT', 0xabcd, { udpSize: 4096 });
    q.writeUInt32BE(0x8000, q.length - 6); // DO bit in the OPT TTL
    const p = parseQuery(q)!;
    q.writeUInt16BE(0x1111, 0); // the forwarded copy's ID was rewritten; the answer must not care
    const tc = decodeMessage(buildTruncated(q, p))!;
    expect(tc.id).toBe(0xabcd);
    expect(tc.type).toBe('response');
    expect(tc.flag_tc).toBe(true);
    expect(tc.flag_rd).toBe(true);
    expect(tc.rcode).toBe('NOERROR');
    expect(tc.questions).toEqual([{ name: 'big.example.test', type: 'TXT', class: 'IN' }]);
    expect(tc.answers).toEqual([]);
    expect(tc.additionals).toHaveLength(1);
    expect(tc.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232, flag_do: true });
  });

  it('omits OPT when the query had none, and builds SERVFAIL the same way', () => {
    const q = query('www.example.test', 'A', 5);
    const p = parseQuery(q)!;
    const tc = decodeMessage(buildTruncated(q, p))!;
    expect(tc.additionals).toEqual([]);
    const sf = decodeMessage(buildServfail(q, p))!;
    expect(sf.rcode).toBe('SERVFAIL');
    expect(sf.flag_tc).toBe(false);
    expect(sf.id).toBe(5);
  });
});
