// The ladder on plain data with a fake clock: rung 1 answers, rung 2 truncates
// and counts, rung 3 (an offender) only for a prefix without TCP follow-ups;
// follow-ups only for a truncated question the backend answered, from the
// prefix it was truncated to; rung 2 held until a quiet spell; networks (the
// aggregate and wide levels) truncated, never blocked; a table under pressure
// gives a fresh key no burst; both sides of each threshold, the dry run and the
// one-step key.
import { describe, expect, it } from 'vitest';
import { runQueryStages, runResponseStages, tcpAnswered } from '../../../src/pipeline/stages.js';
import { parseQuery } from '../../../src/dns/query.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import { judge, matchFollowUp, onOverBudget, rememberTc, RUNG_TRUNCATING, type LadderState } from '../../../src/policy/ladder.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { QueryContext } from '../../../src/policy/context.js';
import type { Verdict } from '../../../src/policy/verdict.js';
import { query } from '../../helpers/wire.js';

function env(config: object = {}, maxTracked = 1000): PolicyEnv<Counters> {
  return {
    settings: compilePolicy(configSchema.parse(config)),
    budgets: new BudgetTable(maxTracked),
    blocks: new BlockTable(1000),
    counters: new Counters(),
  };
}

function ctx(address: string, proto: 'udp' | 'tcp' = 'udp', name = 'big.example.test'): QueryContext {
  const q = query(name, 'TXT', 1, { udpSize: 4096 });
  return { query: q, parsed: parseQuery(q)!, clientAddress: address, family: address.includes(':') ? 6 : 4, proto };
}

const reply900 = 900;

/** large replies to `address` every `everyMs` from `from` to `to`; what each got */
function replies(e: PolicyEnv<Counters>, address: string, from: number, to: number, everyMs: number, tcpEach = 0): Verdict[] {
  const out: Verdict[] = [];
  for (let t = from; t < to; t += everyMs) {
    const v = runResponseStages(ctx(address), reply900, e, t);
    out.push(v);
    // the stub retries the truncated question over TCP and the backend answers it
    if (v.kind === 'answer') for (let i = 0; i < tcpEach; i++) tcpAnswered(ctx(address, 'tcp'), e, t + 1);
  }
  return out;
}

describe('ladder state machine', () => {
  const l = { enabled: true, windowMs: 1000, minTc: 3, followUpShare: 0.5, quietMs: 10_000 };
  const fresh = (): LadderState => ({ rung: 1, windowStart: 0, tcSent: 0, tcLate: 0, followUps: 0, followUpsLate: 0, lastTcAt: 0, tcQ0: 0, tcQ0At: 0, tcRing: null, tcNext: 0 });
  const onFollowUp = (s: LadderState, n: number): void => {
    for (let i = 0; i < n; i++) {
      rememberTc(s, 100 + i, 0);
      matchFollowUp(s, 100 + i, 0, l.windowMs);
    }
  };

  it('truncates through a window and judges only when it ends, with enough TC answers', () => {
    const s = fresh();
    for (let t = 0; t < 1000; t += 100) expect(onOverBudget(s, l, t)).toBe('truncate');
    expect(s.rung).toBe(RUNG_TRUNCATING);
    expect(onOverBudget(s, l, 1000)).toBe('escalate');
  });

  it('does not judge a window with fewer than min_tc answers', () => {
    const s = fresh();
    onOverBudget(s, l, 0);
    onOverBudget(s, l, 10); // 2 answers < 3
    expect(onOverBudget(s, l, 1000)).toBe('truncate');
  });

  it("judges a window's last 250 ms (a quarter, at most 500 ms) with the next window: their follow-ups may be on the way", () => {
    // 3 TC answers, all in the last quarter of the window: too few to judge now
    const late = fresh();
    onOverBudget(late, l, 0); // climbs to rung 2 at 0 (the first TC answer, on time)
    for (const t of [750, 800, 999]) onOverBudget(late, l, t);
    // 1 on time (< min_tc 3): not judged; the 3 late ones open the next window's count
    expect(onOverBudget(late, l, 1000)).toBe('truncate');
    expect(late.tcSent).toBe(4); // 3 carried + the one just sent
    // their follow-ups arrive in the next window and count there: 3 of 6 = the share, kept
    onFollowUp(late, 3);
    for (const t of [1100, 1200]) onOverBudget(late, l, t);
    expect(onOverBudget(late, l, 2000)).toBe('truncate');
    // the same answers at 749 ms and before are judged in their own window
    const onTime = fresh();
    onOverBudget(onTime, l, 0);
    for (const t of [700, 740, 749]) onOverBudget(onTime, l, t);
    expect(onOverBudget(onTime, l, 1000)).toBe('escalate');
  });

  it('judges the late TC answers with their own follow-ups when the flood stops: never a window of answers without them', () => {
    const s = fresh();
    // 3 TC answers on time and 3 late, each retried over TCP 10 ms later
    [0, 100, 200, 800, 900, 950].forEach((t, i) => {
      onOverBudget(s, l, t);
      rememberTc(s, 500 + i, t);
      expect(matchFollowUp(s, 500 + i, t + 10, l.windowMs)).toBe(true);
    });
    expect(judge(s, l, 1000)).toBe(false); // 3 on time, 3 follow-ups
    expect(s).toMatchObject({ tcSent: 3, followUps: 3 }); // the late ones, with theirs
    // the flood has stopped: the next window holds only those, and is kept
    expect(judge(s, l, 2000)).toBe(false);
  });

  it('keeps a prefix at exactly the follow-up share, escalates just under it', () => {
    const at = fresh();
    for (let i = 0; i < 4; i++) onOverBudget(at, l, i);
    onFollowUp(at, 2); // 2 / 4 = 0.5
    expect(onOverBudget(at, l, 1000)).toBe('truncate');
    const under = fresh();
    for (let i = 0; i < 4; i++) onOverBudget(under, l, i);
    onFollowUp(under, 1); // 1 / 4 < 0.5
    expect(onOverBudget(under, l, 1000)).toBe('escalate');
  });
});

describe('the ladder in the response stages (defaults: 50kb/min, burst 10, window 2 s, 10 TC, share 0.2)', () => {
  it('a spoofed victim: full burst, then TC answers, then an offender once a window ends without TCP', () => {
    const e = env();
    const got = replies(e, '198.18.0.10', 0, 3000, 10); // 100 large replies a second
    // the bucket holds burst x truncate_above = 12320 bytes: thirteen 900-byte replies
    expect(got.slice(0, 13).every((v) => v.kind === 'forward')).toBe(true);
    const firstTc = got.findIndex((v) => v.kind === 'answer');
    expect(firstTc).toBe(13);
    expect(got[firstTc]).toMatchObject({ kind: 'answer', reason: 'budget' });
    // the TC stand-in is about the size of the query: no amplification
    const tc = got[firstTc] as Extract<Verdict, { kind: 'answer' }>;
    expect(tc.wire.length).toBeLessThanOrEqual(ctx('198.18.0.10').query.length);
    const firstDrop = got.findIndex((v) => v.kind === 'drop');
    // judged when the first window (opened by the first TC at 130 ms) ends at 2130 ms
    expect(firstDrop).toBe(213);
    expect(got[firstDrop]).toMatchObject({
      kind: 'drop',
      reason: 'rate',
      offender: { prefix: '198.18.0.10', level: 'prefix', cause: 'no_followup' },
    });
    expect(e.budgets.truncatingCount('prefix')).toBe(1);
  });

  it('sends nothing but TC answers on rung 2, though the bucket refills (no trickle of full replies)', () => {
    const e = env();
    const got = replies(e, '198.18.0.25', 0, 1900, 10, 1); // a minute-long NAT would refill 853 bytes a second
    expect(got.slice(13).every((v) => v.kind === 'answer')).toBe(true);
  });

  it('a busy NAT whose stubs retry over TCP stays on rung 2 and is never an offender', () => {
    const e = env();
    const got = replies(e, '198.18.0.20', 0, 60_000, 10, 1);
    expect(got.some((v) => v.kind === 'drop')).toBe(false);
    expect(got.filter((v) => v.kind === 'answer').length).toBeGreaterThan(5000);
    expect(e.counters.tcpFollowUps).toBeGreaterThan(5000);
  });

  it('stays on rung 2 while the flood goes on, though its bucket refills; comes down after a quiet spell (quiet_ms)', () => {
    const e = env();
    const events: string[] = [];
    e.budgets.onRung = (key, rung, level) => events.push(`${level} ${key} ${rung}`);
    // one large reply a second for 60 s, each truncated one retried over TCP: the bucket would
    // have refilled (11700 bytes at 50kb/min take 13.7 s) several times over
    replies(e, '198.18.0.30', 0, 500, 10, 1);
    const later = replies(e, '198.18.0.30', 500, 60_000, 1000, 1);
    expect(later.every((v) => v.kind === 'answer')).toBe(true);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(2);
    expect(events).toEqual(['prefix 198.18.0.30 2']);
    expect(e.budgets.top(1, 59_000)).toEqual([{ prefix: '198.18.0.30', bytes: expect.any(Number), rung: 2 }]);
    // the last truncated reply was at 59.5 s: quiet for 10 s at 69.5 s, not a moment before
    e.budgets.judgeTruncating(e.settings, 69_499);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(2);
    e.budgets.judgeTruncating(e.settings, 69_500);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(1);
    expect(e.budgets.truncatingCount('prefix')).toBe(0);
    expect(events).toEqual(['prefix 198.18.0.30 2', 'prefix 198.18.0.30 1']);
    expect(runResponseStages(ctx('198.18.0.30'), reply900, e, 69_501).kind).toBe('forward');
  });

  it('a refilled bucket does not reopen rung 2 on the packet path either: only quiet_ms does', () => {
    const e = env({ policy: { ladder: { quiet_ms: 30_000 } } });
    replies(e, '198.18.0.31', 0, 500, 10, 1);
    // 20 s of silence: the bucket is full again, but 20 s < 30 s of quiet
    expect(runResponseStages(ctx('198.18.0.31'), reply900, e, 20_500).kind).toBe('answer');
    // that truncated reply starts the quiet spell again
    expect(runResponseStages(ctx('198.18.0.31'), reply900, e, 50_499).kind).toBe('answer');
    expect(runResponseStages(ctx('198.18.0.31'), reply900, e, 80_499).kind).toBe('forward');
  });

  it('judges a window once a second even when the flood has stopped', () => {
    const e = env();
    replies(e, '198.18.0.35', 0, 400, 10); // 40 replies in 0.4 s, then silence
    replies(e, '198.18.0.36', 0, 400, 10, 1); // the same, but each TC comes back over TCP
    expect(e.budgets.judgeTruncating(e.settings, 1000)).toEqual([]); // the window (from 130 ms) has not ended
    expect(e.budgets.judgeTruncating(e.settings, 2200)).toEqual([{ key: '198.18.0.35', level: 'prefix', charged: expect.any(Number) }]);
    // judged once: the next window is empty
    expect(e.budgets.judgeTruncating(e.settings, 4300)).toEqual([]);
  });

  it('counts a TCP query as a follow-up only from a prefix on rung 2, for a question truncated to it, once per TC answer', () => {
    const e = env();
    tcpAnswered(ctx('198.18.0.40', 'tcp'), e, 0);
    replies(e, '198.18.0.40', 0, 100, 10);
    expect(e.counters.tcpFollowUps).toBe(0);
    replies(e, '198.18.0.40', 100, 300, 10); // 20 TC answers for big.example.test TXT
    // another question was never truncated to it: not a follow-up
    tcpAnswered(ctx('198.18.0.40', 'tcp', 'other.example.test'), e, 300);
    expect(e.counters.tcpFollowUps).toBe(0);
    // the truncated question, case folded, is
    tcpAnswered(ctx('198.18.0.40', 'tcp', 'BIG.Example.TEST'), e, 300);
    expect(e.counters.tcpFollowUps).toBe(1);
    // the same question from a neighbour of the same /24 is not the prefix's follow-up
    tcpAnswered(ctx('198.18.0.41', 'tcp'), e, 300);
    expect(e.counters.tcpFollowUps).toBe(1);
    // each TC answer vouches for one follow-up: the first and the last 16 are kept, one is used
    for (let i = 0; i < 40; i++) tcpAnswered(ctx('198.18.0.40', 'tcp'), e, 301);
    expect(e.counters.tcpFollowUps).toBe(17);
    // a retry older than window_ms (2 s) is not a follow-up
    replies(e, '198.18.0.40', 400, 410, 10);
    tcpAnswered(ctx('198.18.0.40', 'tcp'), e, 2401);
    expect(e.counters.tcpFollowUps).toBe(17);
  });

  it('a follow-up that lands on another worker is matched by the worker that truncated the question', () => {
    const a = env();
    const b = env();
    // every charge of A reaches B as a debit (the cluster relay), so B tracks the prefix too
    a.budgets.onCharge = (key, cost, level) => b.budgets.debit(key, cost, b.settings, 0, level);
    const relayed: [string, number][] = [];
    b.budgets.onFollowUp = (key, question) => relayed.push([key, question]);
    replies(a, '198.18.0.44', 0, 300, 10);
    tcpAnswered(ctx('198.18.0.44', 'tcp'), b, 300);
    expect(b.counters.tcpFollowUps).toBe(0);
    expect(relayed).toHaveLength(1);
    const [key, question] = relayed[0]!;
    expect(a.budgets.followUp('prefix', key, question, a.settings, 305, true)).toBe(true);
    // a peer's candidate is never relayed again
    expect(relayed).toHaveLength(1);
    // one that matches nothing here is dropped
    expect(a.budgets.followUp('prefix', key, question ^ 1, a.settings, 305, true)).toBe(false);
  });

  it('a TCP query from the prefix does not count when the session answers it itself: only tcpAnswered does', () => {
    const e = env();
    replies(e, '198.18.0.42', 0, 300, 10);
    runQueryStages(ctx('198.18.0.42', 'tcp'), e, 300);
    expect(e.counters.tcpFollowUps).toBe(0);
  });

  it('a prefix whose TCP host repeats other questions (not the truncated ones) is still an offender', () => {
    const e = env();
    let dropped: Verdict | undefined;
    for (let t = 0; t < 5000 && dropped === undefined; t += 10) {
      const v = runResponseStages(ctx('198.18.0.43'), reply900, e, t);
      if (v.kind === 'drop') dropped = v;
      // 60 TCP queries a second for a name that is never truncated to it
      if (t % 20 === 0) tcpAnswered(ctx('198.18.0.43', 'tcp', 'www.example.test'), e, t);
    }
    expect(dropped).toMatchObject({ offender: { prefix: '198.18.0.43', cause: 'no_followup' } });
  });

  it('with the ladder off, over budget is an offender at once (the one-step behaviour)', () => {
    const e = env({ policy: { ladder: { enabled: false } } });
    const got = replies(e, '198.18.0.50', 0, 200, 10);
    expect(got[12]!.kind).toBe('forward');
    expect(got[13]).toMatchObject({ kind: 'drop', offender: { cause: 'over_budget' } });
  });

  it('block.mode off sends the full reply where rung 2 would truncate, and counts it', () => {
    const e = env({ block: { mode: 'off' } });
    const got = replies(e, '198.18.0.60', 0, 1000, 10);
    expect(got.every((v) => v.kind === 'forward')).toBe(true);
    const enforced = replies(env(), '198.18.0.60', 0, 1000, 10).filter((v) => v.kind === 'answer').length;
    expect(enforced).toBeGreaterThan(80);
    expect(e.counters.wouldTruncate).toBe(enforced);
  });

  it('never truncates or escalates an allowlisted client', () => {
    const e = env({ block: { allowlist: ['198.18.0.70/32'] } });
    expect(replies(e, '198.18.0.70', 0, 5000, 10).every((v) => v.kind === 'forward')).toBe(true);
  });
});

describe('aggregate budgets', () => {
  it('catch a flood spread over 200 addresses of one /24, each under its own budget: TC for the network, never a block', () => {
    const e = env();
    const got: Verdict[] = [];
    // each address gets one 900-byte reply every 2 s (under 50kb/min), 100 replies a second in all, for a minute
    for (let t = 0; t < 60_000; t += 10) {
      const host = (t / 10) % 200;
      got.push(runResponseStages(ctx(`198.18.7.${host + 1}`), reply900, e, t));
      expect(e.budgets.judgeTruncating(e.settings, t)).toEqual([]);
    }
    const truncated = got.findIndex((v) => v.kind === 'answer');
    // the /24 bucket (8 x 12320 bytes) runs out after about 110 replies
    expect(truncated).toBeGreaterThan(100);
    expect(truncated).toBeLessThan(120);
    // and stays out while the flood goes on: every later reply is a TC answer, none is dropped
    expect(got.slice(truncated).every((v) => v.kind === 'answer')).toBe(true);
    expect(e.budgets.rung('aggregate', '198.18.7.0/24')).toBe(2);
    expect(e.counters.escalations['aggregate:no_followup']).toBe(0);
    // no single /32 went over its own budget
    expect(e.budgets.truncatingCount('prefix')).toBe(0);
    // small answers are never charged: a real client of the /24 gets them all
    expect(runResponseStages(ctx('198.18.7.250'), 120, e, 60_000).kind).toBe('forward');
  });

  it('a helper host of the flooded /24 asking over TCP does not bring the network down the ladder', () => {
    const e = env();
    for (let t = 0; t < 60_000; t += 10) {
      const v = runResponseStages(ctx(`198.18.5.${((t / 10) % 200) + 1}`), reply900, e, t);
      if (t > 2000) expect(v.kind).toBe('answer');
      // 60 TCP queries a second from a real host of the /24, for the flooded name too
      if (t % 20 === 0) tcpAnswered(ctx('198.18.5.250', 'tcp'), e, t);
      e.budgets.judgeTruncating(e.settings, t);
    }
    expect(e.counters.tcpFollowUps).toBe(0);
  });

  it('a wide network (/16) catches a flood spread over its /24s, each under its own budget', () => {
    const e = env();
    const got: Verdict[] = [];
    // 64 /24s with 4 addresses each: every /24 gets 2 replies a second, every /32 one every 2 s
    for (let t = 0; t < 20_000; t += 4) {
      const i = t / 4;
      got.push(runResponseStages(ctx(`198.19.${i % 64}.${((i >> 6) % 4) + 1}`), reply900, e, t));
    }
    const truncated = got.findIndex((v) => v.kind === 'answer');
    // the /16 bucket (16 x 12320 bytes) holds 219 replies, and 14 more refill while they go out
    expect(truncated).toBeGreaterThan(225);
    expect(truncated).toBeLessThan(240);
    expect(got.slice(truncated).every((v) => v.kind === 'answer')).toBe(true);
    expect(e.budgets.rung('aggregate', '198.19.0.0/16')).toBe(2);
    expect(e.budgets.truncatingCount('prefix')).toBe(0);
    expect(e.budgets.truncatingCount('aggregate')).toBe(1);
    // without the wide level the same spread stays under every budget
    const off = env({ policy: { large_response: { aggregate: { wide: { enabled: false } } } } });
    for (let t = 0; t < 20_000; t += 4) {
      const i = t / 4;
      expect(runResponseStages(ctx(`198.19.${i % 64}.${((i >> 6) % 4) + 1}`), reply900, off, t).kind).toBe('forward');
    }
  });

  it('an IPv6 /32 over 64 /48s of 9 /64s each', () => {
    const e = env();
    let first = -1;
    let n = 0;
    for (let t = 0; t < 20_000; t += 4, n++) {
      const v = runResponseStages(ctx(`fd00:b000:${(n % 64).toString(16)}:${((n >> 6) % 9).toString(16)}::1`), reply900, e, t);
      if (v.kind === 'drop') throw new Error('a network is never an offender');
      if (v.kind === 'answer' && first < 0) first = n;
    }
    expect(first).toBeGreaterThan(225);
    expect(first).toBeLessThan(240);
    expect(e.budgets.rung('aggregate', 'fd00:b000:0:0:0:0:0:0/32')).toBe(2);
    expect(e.budgets.truncatingCount('aggregate')).toBe(1);
  });

  it('a blocked network drops UDP from every address in it, TCP never', () => {
    const e = env();
    e.blocks.add('198.18.7.0/24', 10_000, 0);
    expect(runQueryStages(ctx('198.18.7.99'), e, 1)).toMatchObject({ kind: 'drop', reason: 'blocked' });
    expect(runQueryStages(ctx('198.18.7.99', 'tcp'), e, 1).kind).toBe('forward');
    expect(runQueryStages(ctx('198.18.8.1'), e, 1).kind).toBe('forward');
    const off = env({ policy: { large_response: { aggregate: { enabled: false } } } });
    off.blocks.add('198.18.7.0/24', 10_000, 0);
    expect(runQueryStages(ctx('198.18.7.99'), off, 1).kind).toBe('forward');
  });

  it('allowlisted clients do not spend the budget of their network: a flooding neighbour is judged on its own', () => {
    const e = env({ block: { allowlist: ['198.18.6.0/29'] } });
    let offender: Verdict | undefined;
    for (let t = 0; t < 5000 && offender === undefined; t += 5) {
      // eight busy allowlisted hosts, 100 large replies a second each
      if (t % 10 === 0) for (let h = 1; h <= 7; h++) expect(runResponseStages(ctx(`198.18.6.${h}`), reply900, e, t).kind).toBe('forward');
      const v = runResponseStages(ctx('198.18.6.48'), reply900, e, t);
      if (v.kind === 'drop') offender = v;
    }
    expect(offender).toMatchObject({ offender: { prefix: '198.18.6.48', level: 'prefix' } });
    expect(e.budgets.truncatingCount('aggregate')).toBe(0);
  });

  it('a /24 whose clients come back over TCP stays on rung 2', () => {
    const e = env();
    for (let t = 0; t < 20_000; t += 10) {
      const address = `198.18.8.${((t / 10) % 200) + 1}`;
      const v = runResponseStages(ctx(address), reply900, e, t);
      expect(v.kind).not.toBe('drop');
      if (v.kind === 'answer') runQueryStages(ctx(address, 'tcp'), e, t + 1);
    }
    expect(e.budgets.truncatingCount('aggregate')).toBe(1);
  });

  it('with aggregates off, the spread flood is not caught', () => {
    const e = env({ policy: { large_response: { aggregate: { enabled: false } } } });
    for (let t = 0; t < 6000; t += 10) {
      expect(runResponseStages(ctx(`198.18.9.${((t / 10) % 200) + 1}`), reply900, e, t).kind).toBe('forward');
    }
  });

  it('an IPv6 /48 aggregate over many /64s: truncated, not blocked', () => {
    const e = env();
    for (let t = 0; t < 6000; t += 10) {
      expect(runResponseStages(ctx(`fd00:a3b1:0:${((t / 10) % 200).toString(16)}::1`), reply900, e, t).kind).not.toBe('drop');
    }
    expect(e.budgets.rung('aggregate', 'fd00:a3b1:0:0:0:0:0:0/48')).toBe(2);
  });
});

describe('a table under pressure', () => {
  it('gives a fresh key no burst when the spray evicts keys used within a refill time; a victim alone gets its burst', () => {
    const alone = env({}, 200);
    const victimAlone = replies(alone, '198.18.0.11', 0, 20_000, 100).filter((v) => v.kind === 'forward').length;
    // its burst of 13, and what refills while it spends them (15 at 10 a second)
    expect(victimAlone).toBe(15);
    const e = env({}, 200);
    let full = 0;
    let spray = 0;
    for (let t = 0; t < 20_000; t += 100) {
      // 250 fresh sources between two of the victim's replies (2500 a second)
      for (let i = 0; i < 250; i++, spray++) runResponseStages(ctx(`198.19.${(spray >> 8) & 255}.${spray & 255}`), reply900, e, t);
      if (runResponseStages(ctx('198.18.0.11'), reply900, e, t).kind === 'forward') full++;
    }
    expect(full).toBeLessThanOrEqual(2 * victimAlone);
    expect(e.budgets.pressured).toBeGreaterThan(1000);
  });

  it('keeps a fresh burst for new keys when the table turns over slowly (the evicted key was quiet)', () => {
    const e = env({}, 10);
    for (let i = 0; i < 10; i++) runResponseStages(ctx(`198.18.1.${i + 1}`), reply900, e, 0);
    // a minute later, a new client: the key it evicts was last used 60 s ago
    const got = replies(e, '198.18.1.100', 60_000, 60_130, 10);
    expect(got.every((v) => v.kind === 'forward')).toBe(true);
    expect(e.budgets.pressured).toBe(0);
  });

  it('puts a key on rung 2 back rather than forget it', () => {
    const e = env({}, 50);
    replies(e, '198.18.0.12', 0, 300, 10);
    expect(e.budgets.rung('prefix', '198.18.0.12')).toBe(2);
    // 49 fresh keys a round: the victim is the least recently used each time, and put back
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 49; i++) runResponseStages(ctx(`198.19.1.${round * 49 + i}`), 100 + reply900, e, 400 + round);
    }
    expect(e.budgets.rung('prefix', '198.18.0.12')).toBe(2);
  });

  it('puts back every key on rung 2 a spray pushes out, not only the first (two victims side by side)', () => {
    // putting the first victim back evicts the next least recently used: the second victim,
    // which was then forgotten (and its judging started over) while plain keys stayed
    const e = env({}, 50);
    for (let t = 0; t < 300; t += 10) {
      runResponseStages(ctx('198.18.0.12'), reply900, e, t);
      runResponseStages(ctx('198.18.7.13'), reply900, e, t);
    }
    expect(e.budgets.rung('prefix', '198.18.0.12')).toBe(2);
    expect(e.budgets.rung('prefix', '198.18.7.13')).toBe(2);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 48; i++) runResponseStages(ctx(`198.19.1.${round * 48 + i}`), 100 + reply900, e, 400 + round);
    }
    expect(e.budgets.rung('prefix', '198.18.0.12')).toBe(2);
    expect(e.budgets.rung('prefix', '198.18.7.13')).toBe(2);
    expect(e.budgets.size).toBeLessThanOrEqual(50);
  });

  it('a table full of keys on rung 2 still takes a fresh key (the put-backs end)', () => {
    const e = env({ policy: { large_response: { aggregate: { enabled: false } } } }, 4);
    for (let t = 0; t < 300; t += 10) for (let i = 1; i <= 4; i++) runResponseStages(ctx(`198.18.0.${i}`), reply900, e, t);
    expect(e.budgets.truncatingCount('prefix')).toBe(4);
    // the fresh key gets a TC answer (no burst under pressure), and the four victims are kept
    expect(runResponseStages(ctx('198.19.0.1'), reply900, e, 400).kind).toBe('answer');
    expect(e.budgets.size).toBe(4);
    for (let i = 1; i <= 4; i++) expect(e.budgets.rung('prefix', `198.18.0.${i}`)).toBe(2);
  });
});
