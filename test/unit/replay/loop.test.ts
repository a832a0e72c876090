// The replay loop one frame at a time, without a capture file: frames built
// in memory go to ReplayLoop.frame() and a recording runner shows what each
// kind of frame (UDP query, UDP reply, TCP from a client, TCP from a server,
// fragment, not DNS) turns into, and when the capture's clock ticks.
import { describe, expect, it } from 'vitest';
import { ReplayLoop, type FrameView, type LoopOptions, type LoopRunner } from '../../../src/replay/loop.js';
import { LINK_ETHERNET, PROTO_TCP } from '../../../src/replay/packet.js';
import type { QueryContext } from '../../../src/policy/context.js';
import { ethernet, framed, ipv4, ipv6, tcp, udp } from '../../fixtures/capture-writer.js';
import { query } from '../../helpers/wire.js';

const T0 = 1_700_000_000_000;
const CLIENT = '198.18.0.10';
const SERVER = '198.18.0.1';
const PROTO_UDP = 17;
const SYN = 0x02;
const PSH = 0x18;

/** Records every call, as [method, ...arguments]; `busy` makes it never idle, `hold` keeps each UDP query pending. */
class Recorder implements LoopRunner {
  readonly calls: unknown[][] = [];
  readonly held: QueryContext[] = [];
  busy = false;
  hold = false;
  release: (ctx: QueryContext) => void = () => undefined;
  idle(): boolean {
    return !this.busy;
  }
  tick(now: number): void {
    this.calls.push(['tick', now]);
  }
  udpQuery(ctx: QueryContext, key: number, port: number, now: number): boolean {
    this.calls.push(['udpQuery', ctx.clientAddress, ctx.family, ctx.parsed.id, key, port, now]);
    if (this.hold) this.held.push(ctx);
    return this.hold;
  }
  malformed(address: string, family: 4 | 6, bytes: number, now: number): void {
    this.calls.push(['malformed', address, family, bytes, now]);
  }
  udpReply(key: number, port: number, id: number, bytes: number, address: string, family: 4 | 6, now: number, answer?: boolean): void {
    this.calls.push(['udpReply', key, port, id, bytes, address, family, now, answer]);
  }
  reflected(reflector: string, target: string, family: 4 | 6, _frame: Buffer, _at: number, _length: number, wireLength: number, now: number): void {
    this.calls.push(['reflected', reflector, target, family, wireLength, now]);
  }
  tcpSender(address: string, family: 4 | 6): void {
    this.calls.push(['tcpSender', address, family]);
  }
  tcpQuery(ctx: QueryContext, now: number): void {
    this.calls.push(['tcpQuery', ctx.clientAddress, ctx.family, ctx.parsed.id, ctx.proto, now]);
  }
  tcpReply(bytes: number): void {
    this.calls.push(['tcpReply', bytes]);
  }
  kinds(): unknown[] {
    return this.calls.map((c) => c[0]);
  }
}

function loopOf(opts: Partial<LoopOptions> = {}): { loop: ReplayLoop; r: Recorder } {
  const r = new Recorder();
  return { loop: new ReplayLoop([r], { ports: new Set([53]), ...opts }), r };
}

const at = (ts: number, buffer: Buffer, end = buffer.length): FrameView => ({ ts, buffer, linkType: LINK_ETHERNET, start: 0, end });
const udpFrame = (src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer => ethernet(ipv4(src, dst, PROTO_UDP, udp(sport, dport, payload)));

function replyTo(q: Buffer, size: number, flags = 0x8180): Buffer {
  const r = Buffer.alloc(Math.max(size, q.length));
  q.copy(r);
  r.writeUInt16BE(flags, 2);
  return r;
}

describe('ReplayLoop: the capture clock', () => {
  it('ticks each whole second after the first frame while a runner is busy, never goes backwards, and counts frames out of order', () => {
    const { loop, r } = loopOf();
    r.busy = true;
    const noise = udpFrame(CLIENT, SERVER, 4000, 80, Buffer.alloc(20));
    loop.frame(at(T0, noise));
    loop.frame(at(T0 + 2500, noise));
    loop.frame(at(T0 + 1200, noise)); // out of order: taken at T0 + 2500
    loop.frame(at(T0 + 2999, noise));
    expect(r.calls).toEqual([['tick', T0 + 1000], ['tick', T0 + 2000]]);
    loop.frame(at(T0 + 3000, noise));
    expect(r.calls.at(-1)).toEqual(['tick', T0 + 3000]);
    const t = loop.finish();
    expect(t).toMatchObject({ packets: 5, outOfOrder: 1, firstTs: T0, lastTs: T0 + 3000 });
    expect(t.skipped.not_dns_port).toBe(5);
  });

  it('skips the ticks of an idle gap, and ticks a long busy gap one second at a time for an hour, then once at its last second', () => {
    const { loop, r } = loopOf();
    const noise = udpFrame(CLIENT, SERVER, 4000, 80, Buffer.alloc(20));
    loop.frame(at(T0, noise));
    loop.frame(at(T0 + 86_400_000, noise)); // a day with nothing pending: no tick at all
    expect(r.calls).toEqual([]);
    r.busy = true;
    loop.frame(at(T0 + 86_400_500, noise)); // the grid continues from the first frame, not from the gap
    loop.frame(at(T0 + 86_401_000, noise));
    expect(r.calls).toEqual([['tick', T0 + 86_401_000]]);
    r.calls.length = 0;
    loop.frame(at(T0 + 86_401_000 + 5 * 3_600_000 + 1, noise));
    expect(r.calls.length).toBe(3601);
    expect(r.calls[3599]).toEqual(['tick', T0 + 86_401_000 + 3_600_000]);
    expect(r.calls[3600]).toEqual(['tick', T0 + 86_401_000 + 5 * 3_600_000]);
  });
});

describe('ReplayLoop: UDP', () => {
  it('hands a query and its reply to the runners under one pairing key, and tells answers from TC stand-ins and errors', () => {
    const { loop, r } = loopOf();
    const q = query('www.example.test', 'A', 0x1234);
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, q)));
    loop.frame(at(T0 + 1, udpFrame(SERVER, CLIENT, 53, 4000, replyTo(q, 300))));
    loop.frame(at(T0 + 2, udpFrame(SERVER, CLIENT, 53, 4000, replyTo(q, 300, 0x8380)))); // TC
    loop.frame(at(T0 + 3, udpFrame(SERVER, CLIENT, 53, 4000, replyTo(q, 300, 0x8182)))); // SERVFAIL
    const [qc, a, tc, servfail] = r.calls;
    expect(qc).toEqual(['udpQuery', CLIENT, 4, 0x1234, expect.any(Number), 4000, T0]);
    const key = qc![4];
    expect(a).toEqual(['udpReply', key, 4000, 0x1234, 300, CLIENT, 4, T0 + 1, true]);
    expect(tc!.at(-1)).toBe(false);
    expect(servfail!.at(-1)).toBe(false);
    expect(loop.finish()).toMatchObject({ udpQueries: 1, udpQueryBytes: q.length, udpReplies: 3, udpReplyBytes: 900 });
  });

  it('tallies a reply whose query is not in the capture as reflected, by reflector and target', () => {
    const { loop, r } = loopOf();
    loop.frame(at(T0, udpFrame(SERVER, CLIENT, 53, 4000, replyTo(query('x.example.test', 'ANY', 7), 1500))));
    expect(r.kinds()).toEqual(['reflected', 'udpReply']);
    expect(r.calls[0]).toEqual(['reflected', SERVER, CLIENT, 4, 1500, T0]);
    const t = loop.finish();
    expect(t.reflection.answers).toBe(1);
    expect(t.reflection.reflectors.get(SERVER)?.bytes).toBe(1500);
  });

  it('judges a reply cut by snaplen at its length on the wire, and counts the cut', () => {
    const { loop, r } = loopOf();
    const q = query('www.example.test', 'A', 9);
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, q)));
    const whole = udpFrame(SERVER, CLIENT, 53, 4000, replyTo(q, 1200));
    loop.frame(at(T0 + 1, whole, 14 + 20 + 8 + 100));
    expect(r.calls[1]![4]).toBe(1200);
    expect(loop.finish().cutBySnaplen).toBe(1);
  });

  it('counts what is no DNS query or reply of a server: a malformed query, a reply sent to the DNS port, a header too short, another server', () => {
    const { loop, r } = loopOf({ servers: new Set([SERVER]) });
    const q = query('www.example.test', 'A', 1);
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, q.subarray(0, 12)))); // a header and no question
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, replyTo(q, 100)))); // QR=1 to the server
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, Buffer.alloc(11))));
    loop.frame(at(T0, udpFrame(CLIENT, '198.18.0.2', 4000, 53, q)));
    loop.frame(at(T0, udpFrame('198.18.0.2', CLIENT, 53, 4000, replyTo(q, 100))));
    expect(r.calls).toEqual([['malformed', CLIENT, 4, 12, T0]]);
    const t = loop.finish();
    expect(t.skipped).toMatchObject({ not_dns: 2, not_server: 2 });
    expect(t.udpQueries).toBe(1);
  });

  it("reuses a query's copy only once every runner that held it let go", () => {
    const { loop, r } = loopOf();
    r.hold = true;
    const q1 = query('www.example.test', 'A', 1);
    const q2 = query('www.example.test', 'A', 2);
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4000, 53, q1)));
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4001, 53, q2)));
    const [first, second] = r.held;
    expect(first!.query).not.toBe(second!.query);
    expect(first!.query.readUInt16BE(0)).toBe(1);
    r.release(first!);
    loop.frame(at(T0, udpFrame(CLIENT, SERVER, 4002, 53, query('www.example.test', 'A', 3))));
    expect(r.held[2]!.query).toBe(first!.query);
    expect(second!.query.readUInt16BE(0)).toBe(2);
  });
});

describe('ReplayLoop: TCP', () => {
  it("cuts a client's stream into queries and a server's into answers, with the client's address on each query", () => {
    const { loop, r } = loopOf();
    const a = framed(query('a.example.test', 'A', 1));
    const b = framed(query('b.example.test', 'AAAA', 2));
    const both = Buffer.concat([a, b]);
    const c2s = (seq: number, flags: number, data?: Buffer): Buffer => ethernet(ipv6('fd00::10', 'fd00::1', PROTO_TCP, tcp(40000, 53, seq, flags, data)));
    loop.frame(at(T0, c2s(99, SYN)));
    loop.frame(at(T0 + 1, c2s(100, PSH, both.subarray(0, a.length + 3))));
    loop.frame(at(T0 + 2, c2s(100 + a.length + 3, PSH, both.subarray(a.length + 3))));
    const answer = framed(replyTo(query('a.example.test', 'A', 1), 700));
    loop.frame(at(T0 + 3, ethernet(ipv6('fd00::1', 'fd00::10', PROTO_TCP, tcp(53, 40000, 500, PSH, answer)))));
    expect(r.calls.filter((c) => c[0] === 'tcpQuery')).toEqual([
      ['tcpQuery', 'fd00::10', 6, 1, 'tcp', T0 + 1],
      ['tcpQuery', 'fd00::10', 6, 2, 'tcp', T0 + 2],
    ]);
    expect(r.calls.filter((c) => c[0] === 'tcpSender').length).toBe(3);
    expect(r.calls.at(-1)).toEqual(['tcpReply', 700]);
    expect(loop.finish()).toMatchObject({ tcpSegments: 4, tcpQueries: 2, tcpReplies: 1, tcpReplyBytes: 700, tcpMidStream: 1 });
  });

  it('takes the lower port as the server when both ports are DNS ports', () => {
    const { loop, r } = loopOf({ ports: new Set([53, 5300]) });
    loop.frame(at(T0, ethernet(ipv4(CLIENT, SERVER, PROTO_TCP, tcp(5300, 53, 1, SYN)))));
    loop.frame(at(T0, ethernet(ipv4(SERVER, CLIENT, PROTO_TCP, tcp(53, 5300, 1, SYN)))));
    expect(r.calls).toEqual([['tcpSender', CLIENT, 4]]);
  });
});

describe('ReplayLoop: fragments', () => {
  it('replays a fragmented query once its last fragment is in, at that fragment’s time', () => {
    const { loop, r } = loopOf();
    const datagram = udp(4000, 53, query('www.example.test', 'TXT', 5));
    loop.frame(at(T0, ethernet(ipv4(CLIENT, SERVER, PROTO_UDP, datagram.subarray(16), { fragOffset: 2 }))));
    expect(r.calls).toEqual([]);
    loop.frame(at(T0 + 7, ethernet(ipv4(CLIENT, SERVER, PROTO_UDP, datagram.subarray(0, 16), { moreFragments: true }))));
    expect(r.calls).toEqual([['udpQuery', CLIENT, 4, 5, expect.any(Number), 4000, T0 + 7]]);
    const t = loop.finish();
    expect(t.reassembly).toMatchObject({ fragments: 2, reassembled: 1 });
    expect(t.packets).toBe(2);
  });
});
