// Property-based fuzz of `ampguard replay` on mutated captures: the captures of
// test/fixtures/replay (made with tcpdump: fragments, a victim's side, a TCP
// stream picked up mid-way) and a pcapng written here, with bytes flipped,
// 32-bit fields overwritten with boundary values (0, 1, 0x7fffffff,
// 0x80000000, 0xffffffff), cut short, spliced or grown. For every one:
//  - the replay returns (no exception of any kind leaves it);
//  - the replay's own code never faulted on a frame (internal_error 0);
//  - a capture that breaks off says where, within the file;
//  - the report builds, prints as a table and as JSON (no date out of range).
// `npm test` runs a fixed seed; `npm run fuzz` a random one and FUZZ_RUNS.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runReplay } from '../../src/replay/run.js';
import { formatReport } from '../../src/replay/report.js';
import { LINK_ETHERNET, LINK_SLL2 } from '../../src/replay/packet.js';
import { ethernet, ipv4, ipv6, pcapng, sll2, tcp, udp, framed } from '../fixtures/capture-writer.js';
import { query } from '../helpers/wire.js';
import { fuzzParams } from './arbitraries.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-fuzz-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000;
const q = query('www.example.test', 'TXT', 7, { udpSize: 4096 });
const reply = Buffer.concat([q, Buffer.alloc(600, 0x78)]);
reply[2] = reply[2]! | 0x80;
const written = pcapng([{ link: LINK_ETHERNET }, { link: LINK_SLL2, tsresol: 9 }], [
  { ts: T0, data: ethernet(ipv4('198.18.0.10', '198.18.0.1', 17, udp(4000, 53, q))) },
  { ts: T0 + 1, iface: 1, data: sll2(ipv4('198.18.0.1', '198.18.0.10', 17, udp(53, 4000, reply.subarray(0, 400)), { moreFragments: true })) },
  { ts: T0 + 2, iface: 1, data: sll2(ipv4('198.18.0.1', '198.18.0.10', 17, reply.subarray(392), { fragOffset: 50 })) },
  { ts: T0 + 3, data: ethernet(ipv6('fd00::10', 'fd00::1', 6, tcp(5000, 53, 77, 0x18, framed(q)), [{ type: 60 }])) },
]);
const bases = [
  ...['frag-v4', 'frag-v6', 'victim', 'tcp-midstream', 'two-fragments'].map((n) => readFileSync(resolve(`test/fixtures/replay/${n}.pcap`))),
  written,
];

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'word'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'splice'; from: number; to: number; length: number }
  | { kind: 'grow'; at: number; bytes: Uint8Array };

// anywhere in the file, evenly (fast-check's numbers lean to the small ones, which would all hit the file header)
const position = fc.noBias(fc.integer({ min: 0, max: 1_000_000 })).map((n) => n / 1_000_000);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('word' as const), at: position, value: fc.constantFrom(0, 1, 8, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), from: position, to: position, length: fc.integer({ min: 1, max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('grow' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
);

function mutate(base: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(base);
  const at = (p: number): number => Math.min(b.length - 1, Math.floor(p * b.length));
  for (const m of ms) {
    if (b.length < 8) break;
    if (m.kind === 'flip') b[at(m.at)] = m.value;
    else if (m.kind === 'word') b.writeUInt32LE(m.value >>> 0, Math.min(at(m.at), b.length - 4));
    else if (m.kind === 'cut') b = b.subarray(0, at(m.at));
    else if (m.kind === 'splice') {
      const from = at(m.from);
      b = Buffer.concat([b.subarray(0, at(m.to)), b.subarray(from, from + m.length), b.subarray(at(m.to))]);
    } else b = Buffer.concat([b.subarray(0, at(m.at)), Buffer.from(m.bytes), b.subarray(at(m.at))]);
  }
  return b;
}

let n = 0;

describe('fuzz: replay of mutated captures', () => {
  it('never throws, never faults on a frame, and always reports', () => {
    // what the mutations reached, so a fuzz that no longer reaches the hostile paths shows
    const seen = { broken: 0, reassembled: 0, fragmentsLost: 0, tcp: 0, reflected: 0 };
    fc.assert(
      fc.property(fc.nat({ max: bases.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (pick, ms) => {
        const bytes = mutate(bases[pick]!, ms);
        const path = join(dir, `m${n++ % 8}.cap`);
        writeFileSync(path, bytes);
        const out = runReplay({ block: { mode: 'userspace' }, policy: { large_response: { max_tracked: 1000 } } }, [path]);
        const t = out.totals;
        expect(t.internalError).toBeNull();
        expect(t.skipped.internal_error).toBe(0);
        for (const e of t.captureErrors) {
          expect(e.offset).toBeGreaterThanOrEqual(0);
          expect(e.offset).toBeLessThanOrEqual(bytes.length);
          expect(e.message).toMatch(/at byte offset \d+$/);
        }
        if (t.captureErrors.length > 0) seen.broken++;
        if (t.reassembly.reassembled > 0) seen.reassembled++;
        if (t.reassembly.invalid + t.reassembly.overlap + t.reassembly.incomplete > 0) seen.fragmentsLost++;
        if (t.tcpQueries + t.tcpReplies > 0) seen.tcp++;
        if (t.reflection.answers > 0) seen.reflected++;
        const r = out.reports[0]!;
        expect(formatReport(r)).toMatch(/^ampguard replay: /);
        expect(JSON.parse(JSON.stringify(r)).totals.queries).toEqual(r.totals.queries);
      }),
      fuzzParams(300, 0.2),
    );
    console.log(`fuzz replay: ${JSON.stringify(seen)}`);
    for (const k of Object.keys(seen) as (keyof typeof seen)[]) expect(seen[k], k).toBeGreaterThan(0);
  }, 120_000);
});
