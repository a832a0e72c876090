// The capture reader and packet decoder on captures written byte by byte:
// pcap in both byte orders and resolutions, pcapng with several interfaces of
// different link types and resolutions, Ethernet with VLAN tags, Linux cooked
// SLL and SLL2, raw IP, IPv6 extension headers, fragments, and broken files,
// which must give an error with the byte offset, never a crash.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureError, CaptureReader } from '../../../src/replay/capture.js';
import { Decoded, LINK_ETHERNET, LINK_RAW, LINK_SLL, LINK_SLL2 } from '../../../src/replay/packet.js';
import { runReplay } from '../../../src/replay/run.js';
import { PolicyRunner } from '../../../src/replay/runner.js';
import { ethernet, ipv4, ipv6, pcap, pcapng, sll, sll2, tcp, udp, framed, type Rec } from '../../fixtures/capture-writer.js';
import { query } from '../../helpers/wire.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(bytes: Buffer): string {
  const p = join(dir, `c${n++}.cap`);
  writeFileSync(p, bytes);
  return p;
}

function frames(path: string): { ts: number; link: number; data: Buffer; offset: number }[] {
  const r = new CaptureReader(path);
  const out = [];
  try {
    for (let f = r.next(); f !== null; f = r.next()) out.push({ ts: f.ts, link: f.linkType, data: Buffer.from(f.data), offset: f.offset });
  } finally {
    r.close();
  }
  return out;
}

function replyTo(q: Buffer, size: number): Buffer {
  const r = Buffer.alloc(Math.max(size, q.length));
  q.copy(r);
  r[2] = r[2]! | 0x80;
  return r;
}

const T0 = 1_700_000_000_000;
const Q = query('www.example.test', 'A', 0x1234);
const v4 = (src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer => ipv4(src, dst, 17, udp(sport, dport, payload));

describe('capture reader', () => {
  it('reads pcap in both byte orders, in micro- and nanoseconds, with the right timestamps', () => {
    const recs: Rec[] = [{ ts: T0 + 0.5, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }, { ts: T0 + 1500.25, data: ethernet(v4('198.18.0.1', '198.18.0.10', 53, 4000, replyTo(Q, 100))) }];
    for (const o of [{}, { bigEndian: true }, { nanos: true }, { nanos: true, bigEndian: true }]) {
      const got = frames(file(pcap(LINK_ETHERNET, recs, o)));
      expect(got.map((f) => f.link)).toEqual([1, 1]);
      expect(got[0]!.ts).toBeCloseTo(T0 + 0.5, 3);
      expect(got[1]!.ts).toBeCloseTo(T0 + 1500.25, 3);
      expect(got[0]!.offset).toBe(24);
    }
  });

  it('reads pcapng with several interfaces of different link types and timestamp resolutions', () => {
    const path = file(pcapng([{ link: LINK_ETHERNET }, { link: LINK_SLL2, tsresol: 9 }, { link: LINK_RAW }], [
      { ts: T0, iface: 0, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) },
      { ts: T0 + 1.5, iface: 1, data: sll2(v4('198.18.0.1', '198.18.0.10', 53, 4000, replyTo(Q, 80))) },
      { ts: T0 + 2.25, iface: 2, data: v4('198.18.0.11', '198.18.0.1', 4001, 53, Q) },
    ]));
    const got = frames(path);
    expect(got.map((f) => f.link)).toEqual([LINK_ETHERNET, LINK_SLL2, LINK_RAW]);
    expect(got[1]!.ts).toBeCloseTo(T0 + 1.5, 3);
    expect(got[2]!.ts).toBeCloseTo(T0 + 2.25, 3);
    const out = runReplay({}, [path]);
    expect(out.totals.udpQueries).toBe(2);
    expect(out.totals.udpReplies).toBe(1);
    expect(out.reports[0]!.totals.unpaired_responses).toBe(0);
  });

  it('names the byte offset of a truncated record, of a bad length and of a bad magic', () => {
    const whole = pcap(LINK_ETHERNET, [{ ts: T0, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }, { ts: T0 + 1, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }]);
    const second = 24 + 16 + (whole.length - 24 - 32) / 2;
    const cut = file(whole.subarray(0, whole.length - 7));
    expect(() => frames(cut)).toThrow(CaptureError);
    expect(() => frames(cut)).toThrow(new RegExp(`truncated record .* at byte offset ${second}$`));
    const bad = Buffer.from(whole);
    bad.writeUInt32LE(0x7fffffff, 24 + 8); // captured length of the first record
    expect(() => frames(file(bad))).toThrow(/corrupt record: captured length 2147483647 at byte offset 24/);
    expect(() => frames(file(Buffer.from('not a capture at all')))).toThrow(/unknown magic .* at byte offset 0/);
    expect(() => frames(file(Buffer.alloc(0)))).toThrow(/empty file/);
    const ng = pcapng([{ link: LINK_ETHERNET }], [{ ts: T0, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }]);
    expect(() => frames(file(ng.subarray(0, ng.length - 10)))).toThrow(/truncated block .* at byte offset \d+/);
    const ngBad = Buffer.from(ng);
    ngBad.writeUInt32LE(999, ngBad.length - 4); // the last block's trailing length
    expect(() => frames(file(ngBad))).toThrow(/trailing length differs at byte offset \d+/);
  });

  it('streams a capture larger than its buffer, records split across reads', () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 60_000; i++) recs.push({ ts: T0 + i, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000 + (i % 1000), 53, Q)) });
    const path = file(pcap(LINK_ETHERNET, recs));
    const r = new CaptureReader(path);
    let count = 0;
    while (r.next() !== null) count++;
    r.close();
    expect(count).toBe(60_000);
  });
});

describe('packet decoder', () => {
  const d = new Decoded();

  it('takes Ethernet with one and two VLAN tags, SLL, SLL2 and raw IP to the same UDP payload', () => {
    const ip = v4('198.18.0.10', '198.18.0.1', 4000, 53, Q);
    for (const [link, frame] of [[LINK_ETHERNET, ethernet(ip)], [LINK_ETHERNET, ethernet(ip, [100])], [LINK_ETHERNET, ethernet(ip, [100, 200])], [LINK_SLL, sll(ip)], [LINK_SLL2, sll2(ip)], [LINK_RAW, ip]] as const) {
      expect(d.decode(frame, link)).toBeNull();
      expect([d.source(), d.destination(), d.srcPort, d.dstPort]).toEqual(['198.18.0.10', '198.18.0.1', 4000, 53]);
      // Ethernet padding is not payload
      expect(Buffer.compare(d.payload, Q)).toBe(0);
    }
  });

  it('walks IPv6 extension headers to UDP, and skips fragments (v4 and v6) but not an atomic fragment', () => {
    const src = 'fd00:a3b1::10';
    const l4 = udp(4000, 53, Q);
    expect(d.decode(ethernet(ipv6(src, 'fd00:a3b1::1', 17, l4, [{ type: 0 }, { type: 60 }, { type: 43 }])), LINK_ETHERNET)).toBeNull();
    expect([d.family, d.source(), d.dstPort, d.payload.length]).toEqual([6, 'fd00:a3b1::10', 53, Q.length]);
    expect(d.decode(ipv6(src, 'fd00:a3b1::1', 17, l4, [{ type: 44 }]), LINK_RAW)).toBeNull();
    expect(d.decode(ipv6(src, 'fd00:a3b1::1', 17, l4, [{ type: 0 }, { type: 44, more: true }]), LINK_RAW)).toBe('fragment');
    expect(d.decode(ipv6(src, 'fd00:a3b1::1', 17, l4, [{ type: 44, fragOffset: 10 }]), LINK_RAW)).toBe('fragment');
    expect(d.decode(ipv4('198.18.0.10', '198.18.0.1', 17, l4, { moreFragments: true }), LINK_RAW)).toBe('fragment');
    expect(d.decode(ipv4('198.18.0.10', '198.18.0.1', 17, l4, { fragOffset: 185 }), LINK_RAW)).toBe('fragment');
  });

  it('says why for what is not UDP or TCP over IP, and never throws on short frames', () => {
    expect(d.decode(ethernet(ipv4('198.18.0.10', '198.18.0.1', 1, Buffer.alloc(8))), LINK_ETHERNET)).toBe('not_udp_tcp');
    const arp = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x06]), Buffer.alloc(28)]);
    expect(d.decode(arp, LINK_ETHERNET)).toBe('not_ip');
    expect(d.decode(Buffer.alloc(40), 147)).toBe('link_type');
    const ip = ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q), [7]);
    for (let len = 0; len < ip.length; len++) expect(() => d.decode(ip.subarray(0, len), LINK_ETHERNET)).not.toThrow();
  });
});

describe('replay classification', () => {
  it('counts a lone fragment, non-DNS ports and non-IP in the report, and pairs a VLAN-tagged IPv6 exchange with extension headers', () => {
    const s6 = 'fd00:a3b1::10';
    const path = file(pcap(LINK_ETHERNET, [
      { ts: T0, data: ethernet(ipv6(s6, 'fd00:a3b1::1', 17, udp(4000, 53, Q), [{ type: 0 }, { type: 60 }]), [42]) },
      { ts: T0 + 1, data: ethernet(ipv6('fd00:a3b1::1', s6, 17, udp(53, 4000, replyTo(Q, 300)), [{ type: 60 }]), [42]) },
      { ts: T0 + 2, data: ethernet(ipv4('198.18.0.10', '198.18.0.1', 17, udp(4000, 53, Q), { moreFragments: true })) },
      { ts: T0 + 3, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 123, Q)) },
      { ts: T0 + 4, data: Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x06]), Buffer.alloc(46)]) },
      { ts: T0 + 5, data: ethernet(ipv4('198.18.0.10', '198.18.0.1', 6, tcp(5000, 53, 1, 0x18, framed(Q)))) },
    ]));
    const r = runReplay({}, [path]).reports[0]!;
    expect(r.packets.skipped).toMatchObject({ not_dns_port: 1, not_ip: 1 });
    // a lone first fragment, of a length no non-final fragment has (not a multiple of 8): refused
    expect(r.packets.fragments).toMatchObject({ fragments: 1, reassembled: 0, invalid: 1 });
    expect(r.totals.queries).toEqual({ udp: 1, tcp: 1 });
    expect(r.totals.responses.udp_captured).toBe(1);
    expect(r.totals.unpaired_responses).toBe(0);
    expect(r.totals.bytes_out_before).toBe(300);
    // the budget prefix as the policy keys it (prefixKey)
    expect(r.top.map((p) => p.prefix)).toContain('fd00:a3b1:0:0:0:0:0:0/64');
  });

  it('uses the wire length of a reply cut by snaplen', () => {
    const q = query('big.example.test', 'TXT', 7, { udpSize: 4096 });
    const path = file(pcap(LINK_RAW, [
      { ts: T0, data: v4('198.18.0.10', '198.18.0.1', 4000, 53, q) },
      { ts: T0 + 1, data: v4('198.18.0.1', '198.18.0.10', 53, 4000, replyTo(q, 3000)), capLen: 200 },
    ]));
    const r = runReplay({}, [path]).reports[0]!;
    expect(r.packets.cut_by_snaplen).toBe(1);
    expect(r.totals.bytes_out_before).toBe(3000);
    // 3000 > truncate_above: size-to-tcp, as the live path would
    expect(r.rules.truncated.size).toBe(1);
  });
});

describe('hostile captures', () => {
  const ok = (): Buffer => pcapng([{ link: LINK_ETHERNET, tsresol: 6 }], [{ ts: T0, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }]);
  // SHB 28 bytes, IDB with if_tsresol 32 bytes, NRB 16 bytes: the EPB starts at 76
  const EPB = 76;

  it('refuses a timestamp past any clock (high word 0xffffffff, or microseconds read as seconds) with E_CAPTURE and the offset', () => {
    const high = ok();
    high.writeUInt32LE(0xffffffff, EPB + 12);
    expect(() => frames(file(high))).toThrow(new RegExp(`timestamp .* past the year 275760 at byte offset ${EPB}$`));
    const secs = ok();
    expect(secs[48]).toBe(6);
    secs[48] = 0; // if_tsresol 0: one unit a second
    expect(() => frames(file(secs))).toThrow(/timestamp .* at 1 units\/s is past the year 275760 at byte offset 76/);
    const res = ok();
    res[48] = 0x7f;
    expect(() => frames(file(res))).toThrow(/if_tsresol 0x7f out of range at byte offset 28/);
    const olen = ok();
    olen.writeUInt16LE(2, 46); // if_tsresol of 2 bytes
    expect(() => frames(file(olen))).toThrow(/if_tsresol of 2 bytes, expected 1 at byte offset 28/);
    const frac = pcap(LINK_ETHERNET, [{ ts: T0, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000, 53, Q)) }]);
    frac.writeUInt32LE(1_000_000, 24 + 4);
    expect(() => frames(file(frac))).toThrow(/timestamp fraction 1000000 us at byte offset 24/);
  });

  it('replays and reports what was read before a capture breaks off, with the error kept for the report', () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 10; i++) recs.push({ ts: T0 + i, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000 + i, 53, Q)) });
    const whole = pcap(LINK_ETHERNET, recs);
    const cut = file(whole.subarray(0, whole.length - 20));
    const second = file(pcap(LINK_ETHERNET, [{ ts: T0 + 100, data: ethernet(v4('198.18.0.11', '198.18.0.1', 4000, 53, Q)) }]));
    const out = runReplay({}, [cut, second]);
    expect(out.totals.udpQueries).toBe(10); // 9 of the first file, and the next file's
    expect(out.reports[0]!.capture_errors).toEqual([{ file: cut, offset: expect.any(Number) as number, message: expect.stringMatching(/truncated record/) as string }]);
    expect(out.reports[0]!.internal_error).toBeNull();
  });

  it('costs nothing for gaps in capture time: an hour, a decade and up to 2106 take a few ticks, not one per second', () => {
    const spy = vi.spyOn(PolicyRunner.prototype, 'tick');
    try {
      const at = [T0, T0 + 3_600_000, T0 + 10 * 365 * 86_400_000, 0xffffffff * 1000];
      const recs = at.map((ts, i) => ({ ts, data: ethernet(v4('198.18.0.10', '198.18.0.1', 4000 + i, 53, Q)) }));
      const out = runReplay({}, [file(pcap(LINK_ETHERNET, recs))]);
      expect(out.totals.udpQueries).toBe(4);
      // each gap: the ticks while a query waits for its reply (backend_timeout_ms), then none
      expect(spy.mock.calls.length).toBeLessThan(20);
      expect(out.reports[0]!.span.end).toBe('2106-02-07T06:28:15.000Z');
    } finally {
      spy.mockRestore();
    }
  });
});
