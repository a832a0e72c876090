// The replay's policy on a capture written byte by byte, on its own clock: a
// spoofed victim is blocked at the time the ladder would block it, a busy NAT
// whose stubs come back over TCP is not, a prefix blocked although it sent
// TCP is named a likely false positive, block.mode off reports "would block"
// and suppresses nothing, a sweep over the rate moves the right way, and the
// tables stay bounded whatever the capture holds.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runReplay } from '../../../src/replay/run.js';
import { parseSweep } from '../../../src/replay/sweep.js';
import { sweepSvg } from '../../../src/replay/plot.js';
import { formatReport } from '../../../src/replay/report.js';
import { LINK_RAW } from '../../../src/replay/packet.js';
import { ipv4, pcap, tcp, udp, framed, type Rec } from '../../fixtures/capture-writer.js';
import { query } from '../../helpers/wire.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-replay-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000;
const SERVER = '198.18.0.1';
const NAT = '198.18.0.10';
const STUB = '198.18.0.11';
const VICTIM = '198.18.0.12';
const HALF_TCP = '198.18.0.13';
/** spoofed queries the capture shows answered with small TC stand-ins (the live ladder's) and SERVFAILs: no small answers of a real client */
const SPOOF_TC = '198.18.0.14';

function replyTo(q: Buffer, size: number, tc = false, rcode = 0): Buffer {
  const r = Buffer.alloc(Math.max(size, q.length));
  q.copy(r);
  r[2] = r[2]! | 0x80 | (tc ? 0x02 : 0);
  r[3] = (r[3]! & 0xf0) | rcode;
  return r;
}

interface Scenario {
  recs: Rec[];
  id: number;
}

/** one UDP exchange: the query at `ms`, a `size`-byte reply 2 ms later */
function exchange(s: Scenario, client: string, ms: number, size: number, type = 'TXT', tc = false, rcode = 0): Buffer {
  const id = (s.id = (s.id + 1) & 0xffff);
  const q = query('medium.example.test', type, id, { udpSize: 4096 });
  const port = 10_000 + (id % 50_000);
  s.recs.push({ ts: T0 + ms, data: ipv4(client, SERVER, 17, udp(port, 53, q)) });
  s.recs.push({ ts: T0 + ms + 2, data: ipv4(SERVER, client, 17, udp(53, port, replyTo(q, size, tc, rcode))) });
  return q;
}

/** one TCP lookup: handshake, the framed query and the reply */
function tcpLookup(s: Scenario, client: string, ms: number): void {
  const id = (s.id = (s.id + 1) & 0xffff);
  const q = query('medium.example.test', 'TXT', id);
  const port = 40_000 + (id % 20_000);
  s.recs.push({ ts: T0 + ms, data: ipv4(client, SERVER, 6, tcp(port, 53, 1000, 0x02)) });
  s.recs.push({ ts: T0 + ms + 1, data: ipv4(client, SERVER, 6, tcp(port, 53, 1001, 0x18, framed(q))) });
  s.recs.push({ ts: T0 + ms + 2, data: ipv4(SERVER, client, 6, tcp(53, port, 5000, 0x18, framed(replyTo(q, 900)))) });
  s.recs.push({ ts: T0 + ms + 3, data: ipv4(client, SERVER, 6, tcp(port, 53, 1001 + q.length + 2, 0x11)) });
}

/** 12 s: a victim flooded with 900-byte replies (no TCP), a NAT with as many that retries every other one over TCP, a quiet stub, and a prefix that sent TCP once */
function scenario(): string {
  const s: Scenario = { recs: [], id: 0 };
  for (let ms = 0; ms < 12_000; ms += 50) {
    exchange(s, VICTIM, ms, 900);
    exchange(s, NAT, ms + 10, 900);
    if (ms % 100 === 0) tcpLookup(s, NAT, ms + 20);
    exchange(s, HALF_TCP, ms + 30, 900);
    if (ms % 2000 === 0) exchange(s, STUB, ms + 40, 120, 'A');
    if (ms % 2000 === 1000) exchange(s, SPOOF_TC, ms + 40, 60, 'TXT', true);
    if (ms % 2000 === 1500) exchange(s, SPOOF_TC, ms + 40, 60, 'TXT', false, 2); // SERVFAIL
  }
  tcpLookup(s, HALF_TCP, 5);
  s.recs.sort((a, b) => a.ts - b.ts);
  const path = join(dir, 'scenario.pcap');
  writeFileSync(path, pcap(LINK_RAW, s.recs));
  return path;
}

const capture = scenario();

describe('replay policy', () => {
  it('blocks the victim about when the ladder judges it, never the NAT that comes back over TCP, and flags the prefix that sent TCP', () => {
    const r = runReplay({ block: { mode: 'ipset' } }, [capture]).reports[0]!;
    const blocked = r.blocks.map((b) => b.prefix).sort();
    expect(blocked).toEqual([VICTIM, HALF_TCP].sort());
    const victim = r.blocks.find((b) => b.prefix === VICTIM)!;
    expect(victim).toMatchObject({ level: 'prefix', reason: 'no_followup', mode: 'blocked', sent_tcp: false, likely_false_positive: false });
    // 13 replies of burst (0.65 s at 20/s), then a 2 s judging window on rung 2
    expect(victim.t).toBeGreaterThan(2.5);
    expect(victim.t).toBeLessThan(4);
    expect(r.blocks.find((b) => b.prefix === HALF_TCP)).toMatchObject({ likely_false_positive: true, tcp_queries: 1 });
    expect(r.likely_false_positives).toBe(1);
    expect(r.rules.rung_changes.up.prefix).toBeGreaterThanOrEqual(3);
    expect(r.rules.truncated.budget).toBeGreaterThan(0);
    expect(r.rules.tcp_followups).toBeGreaterThan(0);
    expect(r.rules.dropped.blocked).toBeGreaterThan(300);
    expect(r.totals.amplification_after).toBeLessThan(r.totals.amplification_before);
    expect(r.top.find((p) => p.prefix === NAT)!.rung).toBe(2);
    expect(r.top.find((p) => p.prefix === VICTIM)!.rung).toBe(3);
    expect(r.top.find((p) => p.prefix === STUB)!.rung).toBe(1);
    expect(formatReport(r)).toMatch(/LIKELY FALSE POSITIVE/);
  });

  it('in block.mode off reports "would block" for the same prefixes and suppresses no byte', () => {
    const r = runReplay({ block: { mode: 'off' } }, [capture]).reports[0]!;
    expect(r.blocks.map((b) => b.prefix).sort()).toEqual([VICTIM, HALF_TCP].sort());
    expect(r.blocks.every((b) => b.mode === 'would_block')).toBe(true);
    expect(r.rules.truncated.budget).toBe(0);
    expect(r.rules.would_truncate).toBeGreaterThan(0);
    expect(r.totals.bytes_out_after).toBe(r.totals.bytes_out_before);
  });

  it('leaves an allowlisted victim alone, and with the ladder off blocks at once, the NAT too', () => {
    const allow = runReplay({ block: { allowlist: [`${VICTIM}/32`] } }, [capture]).reports[0]!;
    expect(allow.blocks.map((b) => b.prefix)).not.toContain(VICTIM);
    const oneStep = runReplay({ policy: { ladder: { enabled: false } } }, [capture]).reports[0]!;
    expect(oneStep.blocks.map((b) => b.prefix).sort()).toEqual([NAT, VICTIM, HALF_TCP].sort());
    expect(oneStep.blocks.every((b) => b.reason === 'over_budget')).toBe(true);
    expect(oneStep.blocks.find((b) => b.prefix === VICTIM)!.t).toBeLessThan(1);
  });

  it('counts the collateral: the real clients (TCP or small answers) that would have lost answers, and what the attacker got', () => {
    const r = runReplay({ block: { mode: 'ipset' } }, [capture]).reports[0]!;
    const c = r.collateral;
    // NAT and HALF_TCP sent TCP, STUB got small answers; SPOOF_TC only TC stand-ins and SERVFAILs, VICTIM only large answers
    expect(c.real_clients).toBe(3);
    expect(c.hurt.map((h) => h.prefix)).toEqual([HALF_TCP]);
    const half = r.top.find((p) => p.prefix === HALF_TCP)!;
    // its queries after the block, and the reply that tripped it
    expect(c.hurt[0]).toMatchObject({ tcp: 1, rung: 3, queries: half.queries });
    expect(c.queries_lost).toBe(c.hurt[0]!.lost);
    // blocked some 3 s into 12 s at 20 queries a second: most of the rest are lost
    expect(c.queries_lost).toBeGreaterThan(half.queries / 2);
    expect(c.queries_lost).toBeLessThan(half.queries);
    const victim = r.top.find((p) => p.prefix === VICTIM)!;
    const spoofTc = r.top.find((p) => p.prefix === SPOOF_TC)!;
    expect(c.attacker).toMatchObject({ prefixes: 2, bytes_sent: victim.bytes_in + spoofTc.bytes_in, bytes_delivered: victim.bytes_after + spoofTc.bytes_after });
    expect(formatReport(r)).toMatch(/collateral: 1 of 3 real clients .* would have lost \d+ answers/);

    // the ladder off: the NAT is blocked too, and its stubs lose their answers
    const oneStep = runReplay({ block: { mode: 'ipset' }, policy: { ladder: { enabled: false } } }, [capture]).reports[0]!.collateral;
    expect(oneStep.hurt.map((h) => h.prefix).sort()).toEqual([NAT, HALF_TCP].sort());
    expect(oneStep.queries_lost).toBeGreaterThan(c.queries_lost);
    expect(oneStep.attacker.bytes_delivered).toBeLessThan(c.attacker.bytes_delivered);

    // a dry run counts the answers its would-be blocks would have cost
    const dry = runReplay({ block: { mode: 'off' } }, [capture]).reports[0]!.collateral;
    expect(dry.hurt.map((h) => h.prefix)).toEqual([HALF_TCP]);
    expect(dry.queries_lost).toBe(c.queries_lost);

    const sweep = runReplay({ block: { mode: 'ipset' } }, [capture], { sweep: [parseSweep('policy.ladder.enabled=true,false')] }).lines;
    expect(sweep.map((l) => l.collateral)).toEqual([{ clients: 1, queries_lost: c.queries_lost }, { clients: 2, queries_lost: oneStep.queries_lost }]);
    expect(sweep[1]!.attacker).toEqual({ bytes_sent: oneStep.attacker.bytes_sent, bytes_delivered: oneStep.attacker.bytes_delivered });
  });

  it('sweeps the rate: the stricter the rate, the more prefixes blocked or on rung 2; one line per value and an SVG', () => {
    const axis = parseSweep('policy.large_response.rate=5kb/min,50kb/min,500kb/min,5mb/min');
    const out = runReplay({}, [capture], { sweep: [axis] });
    expect(out.lines.map((l) => l.values['policy.large_response.rate'])).toEqual(['5kb/min', '50kb/min', '500kb/min', '5mb/min']);
    const hit = out.lines.map((l) => l.prefixes_blocked + l.on_rung_2.prefix);
    for (let i = 1; i < hit.length; i++) expect(hit[i]!).toBeLessThanOrEqual(hit[i - 1]!);
    expect(out.lines[0]!.prefixes_blocked).toBeGreaterThan(0);
    expect(out.lines[3]!.prefixes_blocked).toBe(0);
    expect(out.lines[0]!.bytes_suppressed).toBeGreaterThan(out.lines[3]!.bytes_suppressed);
    const svg = sweepSvg([axis], out.lines, 'test');
    expect(svg).toMatch(/^<svg xmlns/);
    // blocked, rung 2, likely false positives; bytes suppressed
    expect(svg.match(/<polyline/g)!.length).toBe(4);
    const svgPath = join(dir, 'sweep.svg');
    writeFileSync(svgPath, svg);
    expect(readFileSync(svgPath, 'utf8')).toContain('5mb/min');
    if (process.env.REPLAY_SVG) writeFileSync(process.env.REPLAY_SVG, svg);
  });

  it('sweeps two keys and refuses a value the schema refuses, naming the key', () => {
    const out = runReplay({}, [capture], { sweep: [parseSweep('policy.ladder.min_tc=5,1000'), parseSweep('policy.large_response.burst=1,100')] });
    expect(out.lines).toHaveLength(4);
    expect(out.lines.find((l) => l.values['policy.ladder.min_tc'] === '1000')!.prefixes_blocked).toBe(0);
    expect(() => runReplay({}, [capture], { sweep: [parseSweep('policy.large_response.rate=fast')] })).toThrow(/policy\.large_response\.rate/);
    expect(() => parseSweep('rate')).toThrow(/KEY=V1,V2/);
  });

  it('takes only keys the schema names as values: no prototype keys, no sections, nothing pollutes Object.prototype', () => {
    for (const key of ['__proto__.block', '__proto__', 'constructor.prototype.block', 'policy.__proto__.x', 'policy.ladder', 'backends.weight', 'policy.nope']) {
      expect(() => parseSweep(`${key}=1,2`)).toThrow(/is not a config key/);
    }
    expect(({} as Record<string, unknown>).block).toBeUndefined();
    // every key of the reference takes a value
    expect(parseSweep('policy.ladder.min_tc=1,2').values).toEqual([1, 2]);
    expect(parseSweep('block.mode=off,userspace').values).toEqual(['off', 'userspace']);
    // and after all that, a config still parses
    expect(runReplay({ block: { mode: 'off' } }, [capture]).reports[0]!.mode).toBe('off (dry run)');
  });

  it('keeps its tables bounded by the policy limits on a capture of many spoofed sources', () => {
    const s: Scenario = { recs: [], id: 0 };
    for (let i = 0; i < 3000; i++) {
      const src = `198.19.${i >> 8}.${i & 255}`;
      const q = query('medium.example.test', 'TXT', i & 0xffff, { udpSize: 4096 });
      s.recs.push({ ts: T0 + i, data: ipv4(src, SERVER, 17, udp(1000 + i, 53, q)) });
    }
    const path = join(dir, 'spoofed.pcap');
    writeFileSync(path, pcap(LINK_RAW, s.recs));
    const r = runReplay({ max_in_flight: 100, policy: { large_response: { max_tracked: 200 } } }, [path]).reports[0]!;
    expect(r.totals.pairing_overflow).toBeGreaterThan(0);
    expect(r.totals.unanswered_queries).toBeLessThanOrEqual(3000);
    expect(r.top.length).toBeLessThanOrEqual(20);
    expect(r.totals.queries.udp).toBe(3000);
  });
});
