// IP reassembly on fragments written byte by byte: in order or not, exact
// duplicates ignored, an overlap discarding the datagram (as a Linux receiver
// does), a datagram that never completes timing out on the capture clock, the
// table bounded (in datagrams, and in bytes with each fragment held charged),
// fragments no receiver accepts refused, a datagram of too many fragments
// dropped, and a fragment cut by snaplen keeping its length on the wire. Each outcome counted.
import { describe, expect, it } from 'vitest';
import { Reassembler } from '../../../src/replay/reassembly.js';
import { Decoded, LINK_RAW } from '../../../src/replay/packet.js';
import { ipv4, ipv6, udp } from '../../fixtures/capture-writer.js';

const d = new Decoded();
const datagram = udp(53, 4000, Buffer.alloc(100, 0x61)); // 108 bytes: UDP header and 100 bytes

/** fragments of `datagram` at these [start, end) byte ranges (multiples of 8 but the last) */
function v4(ranges: [number, number][], src = '198.18.0.1', data = datagram): Buffer[] {
  return ranges.map(([s, e]) => ipv4(src, '198.18.0.10', 17, data.subarray(s, e), { fragOffset: s / 8, moreFragments: e < data.length }));
}

function feed(r: Reassembler, frames: Buffer[], now = 0, capLen?: number): Buffer | null {
  let whole: Buffer | null = null;
  for (const f of frames) {
    const frame = capLen === undefined ? f : f.subarray(0, capLen);
    expect(d.decode(frame, LINK_RAW)).toBe('fragment');
    const w = r.add(d, now);
    if (w) {
      whole = w.packet;
      expect(d.decode(w.packet, LINK_RAW, 0, w.stop)).toBeNull();
    }
  }
  return whole;
}

describe('Reassembler', () => {
  it('puts fragments together in any order, the datagram whole at its last fragment', () => {
    for (const order of [[[0, 48], [48, 96], [96, 108]], [[96, 108], [0, 48], [48, 96]], [[48, 96], [96, 108], [0, 48]]] as [number, number][][]) {
      const r = new Reassembler();
      const frags = v4(order);
      expect(feed(r, frags.slice(0, 2))).toBeNull();
      expect(feed(r, frags.slice(2))).not.toBeNull();
      expect([d.proto, d.srcPort, d.dstPort, d.wireLength, d.payloadEnd - d.payloadStart]).toEqual([17, 53, 4000, 100, 100]);
      expect(r.stats).toMatchObject({ fragments: 3, reassembled: 1 });
      expect(r.size).toBe(0);
    }
  });

  it('IPv6: the fragment header, in any order', () => {
    const r = new Reassembler();
    const f = (s: number, e: number): Buffer => ipv6('fd00::1', 'fd00::10', 17, datagram.subarray(s, e), [{ type: 0 }, { type: 44, fragOffset: s / 8, more: e < datagram.length }]);
    expect(feed(r, [f(56, 108), f(0, 56)])).not.toBeNull();
    expect([d.family, d.source(), d.wireLength]).toEqual([6, 'fd00::1', 100]);
  });

  it('ignores an exact duplicate, and discards a datagram with overlapping fragments (RFC 5722)', () => {
    const r = new Reassembler();
    expect(feed(r, v4([[0, 48], [0, 48], [48, 96], [96, 108]]))).not.toBeNull();
    expect(r.stats).toMatchObject({ duplicate: 1, reassembled: 1 });
    const o = new Reassembler();
    expect(feed(o, v4([[0, 56], [48, 96]], '198.18.0.2'))).toBeNull();
    expect(o.stats.overlap).toBe(1);
    // and a second, different last fragment
    const l = new Reassembler();
    expect(feed(l, v4([[96, 108], [0, 48]], '198.18.0.3'))).toBeNull();
    expect(feed(l, [ipv4('198.18.0.3', '198.18.0.10', 17, datagram.subarray(48, 104), { fragOffset: 6 })])).toBeNull();
    expect(l.stats.overlap).toBe(1);
  });

  it('times out an incomplete datagram 30 s after its first fragment on the capture clock, and counts what is left at the end', () => {
    const r = new Reassembler();
    feed(r, v4([[0, 48]], '198.18.0.4'), 0);
    feed(r, v4([[48, 96]], '198.18.0.5'), 29_000);
    // 30 s after the first: it is gone, the other is not
    expect(feed(r, v4([[48, 96], [96, 108]], '198.18.0.4'), 30_000)).toBeNull();
    expect(r.stats.timeout).toBe(1);
    r.finish(31_000);
    expect(r.stats.incomplete).toBe(2);
  });

  it('keeps at most maxDatagrams incomplete datagrams, the newest, and refuses fragments no receiver accepts', () => {
    const r = new Reassembler(100);
    for (let i = 0; i < 1000; i++) feed(r, v4([[0, 48]], `198.19.${i >> 8}.${i & 255}`));
    expect(r.size).toBe(100);
    expect(r.stats.evicted).toBe(900);
    const bad = new Reassembler();
    // a non-final fragment of 12 bytes; one ending past 65,535 bytes
    feed(bad, [ipv4('198.18.0.6', '198.18.0.10', 17, datagram.subarray(0, 12), { moreFragments: true })]);
    feed(bad, [ipv4('198.18.0.6', '198.18.0.10', 17, Buffer.alloc(100), { fragOffset: 8190 })]);
    expect(bad.stats.invalid).toBe(2);
    expect(bad.size).toBe(0);
  });

  it('drops a datagram of more than 256 fragments as invalid, and still puts together one of 52', () => {
    const big = udp(53, 4000, Buffer.alloc(3000, 0x62));
    const eights = (n: number): [number, number][] => Array.from({ length: n }, (_, i) => [i * 8, i * 8 + 8]);
    const r = new Reassembler();
    // 257 fragments of 8 bytes, none the last: the 257th drops the datagram
    expect(feed(r, v4(eights(257), '198.18.0.7', big))).toBeNull();
    expect(r.stats.invalid).toBe(1);
    expect(r.size).toBe(0);
    // 52 fragments of 56 bytes and the rest: whole
    const ranges: [number, number][] = Array.from({ length: 52 }, (_, i) => [i * 56, Math.min(big.length, i * 56 + 56)]);
    ranges.push([52 * 56, big.length]);
    expect(feed(r, v4(ranges, '198.18.0.8', big))?.length).toBe(20 + big.length);
  });

  it('charges each fragment it holds against maxBytes, not only its bytes: tiny fragments cannot hold memory many times their size', () => {
    const big = udp(53, 4000, Buffer.alloc(3000, 0x62));
    const eights: [number, number][] = Array.from({ length: 200 }, (_, i) => [i * 8, i * 8 + 8]);
    const r = new Reassembler(16_384, 1 << 20);
    // 200 datagrams of 200 fragments of 8 bytes: ~3 KiB of data each (640 KiB in all), 40,000 fragments
    for (let i = 0; i < 200; i++) feed(r, v4(eights, `198.19.0.${i}`, big));
    // what 1 MiB holds at 128 bytes a fragment besides the data: about 30 datagrams of 200 fragments
    expect(r.size).toBeLessThanOrEqual(40);
    expect(r.stats.evicted).toBeGreaterThanOrEqual(160);
  });

  it('keeps the wire length of a fragment cut by snaplen: the whole datagram has its size, only its captured start is read', () => {
    const r = new Reassembler();
    const frags = v4([[0, 48], [48, 96], [96, 108]], '198.18.0.7');
    feed(r, [frags[0]!], 0, 40);
    expect(feed(r, frags.slice(1))).not.toBeNull();
    expect(d.wireLength).toBe(100);
    // 20 bytes of the first fragment's data were captured: 8 of UDP header, 12 of payload
    expect(d.payloadEnd - d.payloadStart).toBe(12);
  });
});
