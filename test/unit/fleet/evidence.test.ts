// The evidence batch and its checks (src/fleet/evidence.ts, verdict.ts,
// start.ts asDebits): what a node publishes, and what it takes from a peer.
import { describe, expect, it } from 'vitest';
import { EvidenceBatch, MAX_ENTRIES, parseEvidence } from '../../../src/fleet/evidence.js';
import { parseVerdict, verdictKey } from '../../../src/fleet/verdict.js';
import { asDebits } from '../../../src/fleet/start.js';
import type { PolicySettings } from '../../../src/config/compile.js';

describe('EvidenceBatch', () => {
  it('sums charges per key and level, sends every follow-up (the same question twice vouches for two TC answers), and empties on take', () => {
    const b = new EvidenceBatch();
    b.charge('198.18.0.1', 1000, false);
    b.charge('198.18.0.1', 232, false);
    b.charge('198.18.0.0/24', 1232, true);
    // follow-ups carry the hash of the question answered over TCP (negative ones too)
    b.add({ d: [['198.18.0.1', 8]], f: [['198.18.0.2', -5, 0]] });
    b.followUp('198.18.0.2', -5, 0); // the same question again: sent again
    b.followUp('198.18.0.2', 7, 0);
    b.followUp('198.18.0.2', 7, 1);
    b.blocked('198.18.0.3');
    expect(b.take()).toEqual([{ d: [['198.18.0.1', 1240]], a: [['198.18.0.0/24', 1232]], f: [['198.18.0.2', -5, 0], ['198.18.0.2', -5, 0], ['198.18.0.2', 7, 0], ['198.18.0.2', 7, 1]], x: ['198.18.0.3'] }]);
    expect(b.size).toBe(0);
    expect(b.take()).toEqual([]);
  });

  it('splits a batch bigger than one message', () => {
    const b = new EvidenceBatch();
    for (let i = 0; i < MAX_ENTRIES + 1; i++) b.charge(`k${i}`, 1, false);
    const bodies = b.take();
    expect(bodies.map((x) => x.d.length)).toEqual([MAX_ENTRIES, 1]);
  });
});

describe('parseEvidence', () => {
  it('takes the shape it publishes', () => {
    const body = { d: [['198.18.0.1', 1232]], a: [], f: [['198.18.0.1', 2, 0], ['198.18.0.1', -2147483648, 1]], x: ['198.18.0.9'] };
    expect(parseEvidence(JSON.stringify(body))).toEqual(body);
    expect(parseEvidence('{"d":[]}')).toEqual({ d: [], a: [], f: [], x: [] });
  });

  it('refuses negative, non-finite or oddly shaped entries whole', () => {
    for (const bad of [
      'nope', 'null', '[]', '{"d":[["k",-5]]}', '{"d":[["k","5"]]}', '{"d":[["k"]]}', '{"d":[["",1]]}',
      '{"f":[["k",1,2]]}', '{"f":[["k",1.5,0]]}', '{"f":[["k",5e9,0]]}', '{"x":[5]}', `{"d":[["${'k'.repeat(65)}",1]]}`, '{"d":[["k",1e400]]}',
    ]) expect(parseEvidence(bad), bad).toBeNull();
  });

  it('takes question 0: a follow-up the sender matched itself (counted in every window, by no counter twice)', () => {
    expect(parseEvidence('{"f":[["198.18.0.1",0,0]]}')?.f).toEqual([['198.18.0.1', 0, 0]]);
  });
});

describe('verdicts', () => {
  it('parses its own shape and refuses others', () => {
    expect(parseVerdict('{"op":"block","p":"198.18.0.1","at":1,"exp":2}')).toEqual({ op: 'block', p: '198.18.0.1', at: 1, exp: 2 });
    expect(parseVerdict('{"op":"unblock","p":"fd00:1::/48","at":1,"exp":2}')?.op).toBe('unblock');
    for (const bad of ['{"op":"drop","p":"1.2.3.4","at":1,"exp":2}', '{"op":"block","p":"a b","at":1,"exp":2}', '{"op":"block","p":"1.2.3.4","at":1.5,"exp":2}', 'x'])
      expect(parseVerdict(bad), bad).toBeNull();
  });

  it('keys the KV with what a KV key may hold (IPv6 has colons)', () => {
    expect(verdictKey('fd00:1::/48')).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(verdictKey('fd00:1::/48'), 'base64url').toString()).toBe('fd00:1::/48');
  });
});

describe('asDebits', () => {
  it("turns a peer's prefix block into its whole prefix bucket spent, nothing charged to a network under the prefix's key", () => {
    const s = { prefixBudget: { capacity: 12320 }, aggregate: { rule: { capacity: 123200 } } } as unknown as PolicySettings;
    expect(asDebits({ d: [['a', 1]], a: [['198.18.0.0/24', 5]], x: ['198.18.0.7'] }, s)).toEqual({ d: [['a', 1], ['198.18.0.7', 12320]], a: [['198.18.0.0/24', 5]], f: [] });
    expect(asDebits({ d: [['a', 1]] }, s)).toEqual({ d: [['a', 1]], a: [], f: [] });
  });
});
