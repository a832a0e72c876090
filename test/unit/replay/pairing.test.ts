// Pairing queries with replies in the replay, and the pool their copies come
// from (docs/replay.md, speed): a reply pairs only with its own query, a copy
// is reused only once nothing waits with it, and the pool stays bounded.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINK_ETHERNET } from '../../../src/replay/packet.js';
import { pairKey } from '../../../src/replay/runner.js';
import { QueryPool } from '../../../src/replay/query-pool.js';
import { runReplay } from '../../../src/replay/run.js';
import { ethernet, ipv4, pcap, udp, type Rec } from '../../fixtures/capture-writer.js';
import { query } from '../../helpers/wire.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-pairing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T0 = 1_700_000_000_000;

function replyTo(q: Buffer, size: number): Buffer {
  const r = Buffer.alloc(Math.max(size, q.length));
  q.copy(r);
  r[2] = r[2]! | 0x80;
  return r;
}

const frame = (src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer => ethernet(ipv4(src, dst, 17, udp(sport, dport, payload)));

describe('replay pairing', () => {
  it('keeps pairing keys small integers, and pairs a reply only with the query of its address, port and ID', () => {
    for (const [port, id, bits] of [[65_535, 65_535, 0xfffff], [0, 0, 0], [53_000, 0x1234, 0xabcde]] as const) {
      const k = pairKey(port, id, bits);
      expect(Number.isInteger(k) && k >= 0 && k < 2 ** 30).toBe(true);
    }
    const q = query('www.example.test', 'A', 0x1234);
    // another port and ID of the same client under the same key: a reply to it is not this query's
    const bits = 0; // one client: its address bits are the same on both sides, and cancel out
    let twin: [number, number] | null = null;
    for (let port = 4000 + 8192; port < 65_536 && twin === null; port += 8192) {
      for (let id = 0; id < 65_536; id++) {
        if (pairKey(port, id, bits) === pairKey(4000, 0x1234, bits)) {
          twin = [port, id];
          break;
        }
      }
    }
    expect(twin).not.toBeNull();
    const [twinPort, twinId] = twin!;
    // large: paired with the query by mistake, it would be a size-to-tcp TC
    const twinReply = replyTo(q, 1300);
    twinReply.writeUInt16BE(twinId, 0);
    const recs: Rec[] = [
      { ts: T0, data: frame('198.18.0.10', '198.18.0.1', 4000, 53, q) },
      // the same ID to another port, from another address, and the twin: none is this query's reply
      { ts: T0 + 1, data: frame('198.18.0.1', '198.18.0.10', 53, 4001, replyTo(q, 100)) },
      { ts: T0 + 2, data: frame('198.18.0.1', '198.18.0.11', 53, 4000, replyTo(q, 100)) },
      { ts: T0 + 2.5, data: frame('198.18.0.1', '198.18.0.10', 53, twinPort, twinReply) },
      { ts: T0 + 3, data: frame('198.18.0.1', '198.18.0.10', 53, 4000, replyTo(q, 100)) },
    ];
    const path = join(dir, 'pairs.pcap');
    writeFileSync(path, pcap(LINK_ETHERNET, recs));
    const r = runReplay({}, [path]).reports[0]!;
    expect(r.totals.unpaired_responses).toBe(3);
    expect(r.rules.truncated.size).toBe(0);
    expect(r.totals.unanswered_queries).toBe(0);
  });

  it('pairs and judges every query in each runner of a sweep while 200 wait at once and their copies are reused', () => {
    // 200 clients each send a query (EDNS 4096, so a 1300-byte reply passes the
    // client's limit) and get their reply only after all 200 have asked: 200
    // copies wait at once, then are reused by the next round. Each reply is over
    // truncate_above only in the runners whose threshold is below it.
    const recs: Rec[] = [];
    let t = T0;
    for (let round = 0; round < 3; round++) {
      const qs: Buffer[] = [];
      for (let c = 0; c < 200; c++) {
        const q = query(`c${c}.example.test`, 'TXT', (round << 8) | c, { udpSize: 4096 });
        qs.push(q);
        recs.push({ ts: (t += 1), data: frame(`198.18.1.${c}`, '198.18.0.1', 5000 + c, 53, q) });
      }
      for (let c = 0; c < 200; c++) recs.push({ ts: (t += 1), data: frame('198.18.0.1', `198.18.1.${c}`, 53, 5000 + c, replyTo(qs[c]!, 1300)) });
    }
    const path = join(dir, 'rounds.pcap');
    writeFileSync(path, pcap(LINK_ETHERNET, recs));
    const out = runReplay({}, [path], { sweep: [{ key: 'policy.truncate_above', values: [1200, 1232, 1400], texts: ['1200', '1232', '1400'] }] });
    const tc = out.reports.map((r) => r.rules.truncated.size);
    expect(tc).toEqual([600, 600, 0]);
    for (const r of out.reports) {
      expect(r.totals.unpaired_responses).toBe(0);
      expect(r.totals.unanswered_queries).toBe(0);
    }
  });
});

describe('query pool', () => {
  it('hands out exact-length copies, reuses a given-back buffer for the same length, and keeps long ones out', () => {
    const pool = new QueryPool();
    const src = Buffer.from('0123456789abcdefghij');
    const a = pool.copy(src, 2, 5);
    expect(a.toString()).toBe('23456');
    pool.give(a);
    const b = pool.copy(src, 10, 5);
    expect(b).toBe(a);
    expect(b.toString()).toBe('abcde');
    expect(pool.copy(src, 0, 5)).not.toBe(a);
    const long = Buffer.alloc(600, 1);
    const l = pool.copy(long, 0, 600);
    pool.give(l);
    expect(pool.copy(long, 0, 600)).not.toBe(l);
  });
});
