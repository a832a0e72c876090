// The replay on captures made with real tools (test/fixtures/replay/make-fixtures.sh:
// tcpdump on a veth between network namespaces, pdns_recursor, small MTUs):
//  - a capture in which every packet is a fragment gives the same queries,
//    answers, bytes and amplification as its unfragmented twin, IPv4 and IPv6
//    (the IPv6 twin is also fragmented here, every packet of it, queries too);
//  - a 2-fragment answer counts its whole size;
//  - at a reflection's victim, the reflectors are named with their bytes;
//  - a TCP stream captured without its handshake, starting inside a query,
//    yields the queries that follow; its answer side alone counts as answers;
//  - none of these ordinary captures blocks anybody.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runReplay } from '../../../src/replay/run.js';
import { CaptureReader } from '../../../src/replay/capture.js';
import { Decoded, LINK_ETHERNET } from '../../../src/replay/packet.js';
import { pcap, type Rec } from '../../fixtures/capture-writer.js';

const FIX = resolve('test/fixtures/replay');
const fx = (name: string): string => join(FIX, name);
const dir = mkdtempSync(join(tmpdir(), 'ampguard-replay-fx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** every frame of a capture, copied */
function frames(path: string): Rec[] {
  const r = new CaptureReader(path);
  const out: Rec[] = [];
  try {
    for (let f = r.next(); f !== null; f = r.next()) out.push({ ts: f.ts, data: Buffer.from(f.data) });
  } finally {
    r.close();
  }
  return out;
}

/**
 * An Ethernet frame's IP packet cut into fragments of at most `size` bytes of
 * data (a multiple of 8), as a router with a small MTU would: IPv4 by its
 * header, IPv6 with a fragment header after the fixed header.
 */
function fragment(frame: Buffer, size: number, id: number): Buffer[] {
  const eth = frame.subarray(0, 14);
  const ip = frame.subarray(14);
  const v6 = ip[0]! >> 4 === 6;
  const hlen = v6 ? 40 : (ip[0]! & 15) * 4;
  const total = v6 ? 40 + ip.readUInt16BE(4) : ip.readUInt16BE(2);
  const data = ip.subarray(hlen, total);
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += size) {
    const part = data.subarray(off, off + size);
    const more = off + size < data.length;
    let h: Buffer;
    if (v6) {
      h = Buffer.alloc(48);
      ip.copy(h, 0, 0, 40);
      h[6] = 44;
      h.writeUInt16BE(8 + part.length, 4);
      h[40] = ip[6]!;
      h.writeUInt16BE(off | (more ? 1 : 0), 42);
      h.writeUInt32BE(id, 44);
    } else {
      h = Buffer.from(ip.subarray(0, hlen));
      h.writeUInt16BE(hlen + part.length, 2);
      h.writeUInt16BE(id & 0xffff, 4);
      h.writeUInt16BE((more ? 0x2000 : 0) | (off / 8), 6);
    }
    out.push(Buffer.concat([eth, h, part]));
  }
  return out;
}

function summary(path: string) {
  const r = runReplay({ block: { mode: 'userspace' } }, [path]).reports[0]!;
  return { r, key: { queries: r.totals.queries, answers: r.totals.responses.udp_captured, bytesIn: r.totals.bytes_in, bytesOut: r.totals.bytes_out_before, ampl: r.totals.amplification_before, after: r.totals.bytes_out_after, unpaired: r.totals.unpaired_responses } };
}

function countFragments(path: string): { frames: number; fragments: number } {
  const d = new Decoded();
  const all = frames(path);
  return { frames: all.length, fragments: all.filter((f) => d.decode(f.data, LINK_ETHERNET) === 'fragment').length };
}

describe('replay of captures made with tcpdump and pdns_recursor', () => {
  it('IPv4: every packet of frag-v4 is a fragment, and it reads as its unfragmented twin', () => {
    expect(countFragments(fx('frag-v4.pcap'))).toEqual({ frames: 30, fragments: 30 });
    expect(countFragments(fx('whole-v4.pcap')).fragments).toBe(0);
    const whole = summary(fx('whole-v4.pcap'));
    const frag = summary(fx('frag-v4.pcap'));
    expect(whole.key.queries.udp).toBe(4);
    expect(whole.key.answers).toBe(4);
    expect(whole.key.unpaired).toBe(0);
    expect(frag.key).toEqual(whole.key);
    expect(frag.r.packets.fragments).toMatchObject({ fragments: 30, reassembled: 8, overlap: 0, timeout: 0, incomplete: 0 });
    expect(frag.r.blocks).toEqual([]);
  });

  it('IPv6: the fragmented answers of frag-v6 read as their twin, and so does the twin with every packet fragmented', () => {
    expect(countFragments(fx('frag-v6.pcap')).fragments).toBe(7);
    const whole = summary(fx('whole-v6.pcap'));
    expect(whole.key.queries.udp).toBe(3);
    expect(whole.key.answers).toBe(3);
    expect(summary(fx('frag-v6.pcap')).key).toEqual(whole.key);
    // every packet of the twin, queries too, in 32-byte fragments, the last fragment first
    let id = 1;
    const recs = frames(fx('whole-v6.pcap')).flatMap((f) => fragment(f.data, 32, id++).reverse().map((data) => ({ ts: f.ts, data })));
    const all = join(dir, 'all-frag-v6.pcap');
    writeFileSync(all, pcap(LINK_ETHERNET, recs));
    expect(countFragments(all).fragments).toBe(recs.length);
    const r = summary(all);
    expect(r.key).toEqual(whole.key);
    expect(r.r.packets.fragments.reassembled).toBe(6);
  });

  it('IPv4: the twin with every packet in 8-byte fragments, out of order, reads the same', () => {
    const whole = summary(fx('whole-v4.pcap'));
    let id = 100;
    const recs = frames(fx('whole-v4.pcap')).flatMap((f) => {
      const parts = fragment(f.data, 8, id++);
      // the middle ones backwards: the last fragment is not the last to arrive
      return [parts[0]!, ...parts.slice(1).reverse()].map((data) => ({ ts: f.ts, data }));
    });
    const all = join(dir, 'all-frag-v4.pcap');
    writeFileSync(all, pcap(LINK_ETHERNET, recs));
    expect(summary(all).key).toEqual(whole.key);
  });

  it('a 2-fragment answer counts its whole size', () => {
    expect(countFragments(fx('two-fragments.pcap')).fragments).toBe(2);
    const { r } = summary(fx('two-fragments.pcap'));
    expect(r.totals.responses.udp_captured).toBe(1);
    // 7 strings of 255 bytes: far more than the first fragment's 1,472
    expect(r.totals.bytes_out_before).toBeGreaterThan(1800);
    expect(r.totals.unpaired_responses).toBe(0);
    // over truncate_above: size-to-tcp, as live
    expect(r.rules.truncated.size).toBe(1);
  });

  it("at the victim: says so, names the three reflectors with their answers, bytes and rate, and what the policy would have let each send", () => {
    const { r } = summary(fx('victim.pcap'));
    const v = r.reflection;
    expect(v.detected).toBe(true);
    expect(v.share).toBe(1);
    expect(v.reflectors).toBe(3);
    expect(v.targets).toBe(1);
    expect(v.by_reflector.map((x) => x.reflector)).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
    expect(v.by_reflector.map((x) => x.answers)).toEqual([50, 16, 5]);
    for (const x of v.by_reflector) {
      expect(x.bytes).toBeGreaterThan(x.answers * 700);
      expect(x.bytes_per_s).toBeGreaterThan(0);
      // each would have sent less: its first large answers, then TC stand-ins
      expect(x.allowed_bytes!).toBeLessThan(x.bytes);
      expect(x.truncated!).toBeGreaterThan(0);
    }
    expect(v.by_target).toMatchObject([{ target: '198.18.0.66', answers: 71, reflectors: 3 }]);
    expect(v.bytes).toBe(v.by_target[0]!.bytes);
    expect(r.blocks).toEqual([]);
  });

  it('a TCP stream captured from the middle of a query yields the queries after it; its answer side alone counts as answers', () => {
    const { r } = summary(fx('tcp-midstream.pcap'));
    expect(r.totals.queries.tcp).toBe(4);
    expect(r.totals.responses.tcp).toBe(5);
    expect(r.packets.tcp_mid_stream).toBe(2);
    // the rest of the query the capture began inside
    expect(r.packets.tcp_resync_bytes).toBeGreaterThan(0);
    const a = summary(fx('tcp-answers-only.pcap')).r;
    expect(a.totals.responses.tcp).toBe(5);
    expect(a.totals.tcp_bytes_out).toBe(r.totals.tcp_bytes_out);
    expect(a.totals.queries.tcp).toBe(0);
  });

  it('the fixtures are small, as committed', () => {
    for (const f of ['whole-v4', 'frag-v4', 'whole-v6', 'frag-v6', 'two-fragments', 'victim', 'tcp-midstream', 'tcp-answers-only']) {
      expect(readFileSync(fx(`${f}.pcap`)).length).toBeLessThan(16_384);
    }
  });
});
