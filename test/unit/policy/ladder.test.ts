// The ladder on plain data with a fake clock: rung 1 answers, rung 2 truncates
// and counts, rung 3 (an offender) only without TCP follow-ups; both sides of
// each threshold, the aggregate level, the dry run and the one-step key.
import { describe, expect, it } from 'vitest';
import { runQueryStages, runResponseStages } from '../../../src/pipeline/stages.js';
import { parseQuery } from '../../../src/dns/query.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import { onFollowUp, onOverBudget, RUNG_TRUNCATING, type LadderState } from '../../../src/policy/ladder.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { QueryContext } from '../../../src/policy/context.js';
import type { Verdict } from '../../../src/policy/verdict.js';
import { query } from '../../helpers/wire.js';

function env(config: object = {}): PolicyEnv {
  return {
    settings: compilePolicy(configSchema.parse(config)),
    budgets: new BudgetTable(1000),
    blocks: new BlockTable(1000),
    counters: new Counters(),
  };
}

function ctx(address: string, proto: 'udp' | 'tcp' = 'udp'): QueryContext {
  const q = query('big.example.test', 'TXT', 1, { udpSize: 4096 });
  return { query: q, parsed: parseQuery(q)!, clientAddress: address, family: address.includes(':') ? 6 : 4, proto };
}

const reply900 = 900;

/** large replies to `address` every `everyMs` from `from` to `to`; what each got */
function replies(e: PolicyEnv, address: string, from: number, to: number, everyMs: number, tcpEach = 0): Verdict[] {
  const out: Verdict[] = [];
  for (let t = from; t < to; t += everyMs) {
    const v = runResponseStages(ctx(address), reply900, e, t);
    out.push(v);
    if (v.kind === 'answer') for (let i = 0; i < tcpEach; i++) runQueryStages(ctx(address, 'tcp'), e, t + 1);
  }
  return out;
}

describe('ladder state machine', () => {
  const l = { enabled: true, windowMs: 1000, minTc: 3, followUpShare: 0.5 };
  const fresh = (): LadderState => ({ rung: 1, windowStart: 0, tcSent: 0, followUps: 0 });

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

  it('falls back to rung 1 once the bucket has refilled, telling the listener and the top list each time', () => {
    const e = env();
    const events: string[] = [];
    e.budgets.onRung = (key, rung, level) => events.push(`${level} ${key} ${rung}`);
    replies(e, '198.18.0.30', 0, 500, 10, 1);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(2);
    expect(events).toEqual(['prefix 198.18.0.30 2']);
    expect(e.budgets.top(1, 500)).toEqual([{ prefix: '198.18.0.30', bytes: expect.any(Number), rung: 2 }]);
    // thirteen 900-byte replies left 620 of 12320 bytes at 120 ms; nothing is spent on rung 2,
    // and 11700 bytes at 50kb/min take 13.7 s to come back
    e.budgets.settle(e.settings, 13_700);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(2);
    e.budgets.settle(e.settings, 13_900);
    expect(e.budgets.rung('prefix', '198.18.0.30')).toBe(1);
    expect(e.budgets.truncatingCount('prefix')).toBe(0);
    expect(events).toEqual(['prefix 198.18.0.30 2', 'prefix 198.18.0.30 1']);
    expect(runResponseStages(ctx('198.18.0.30'), reply900, e, 13_901).kind).toBe('forward');
  });

  it('judges a window once a second even when the flood has stopped', () => {
    const e = env();
    replies(e, '198.18.0.35', 0, 400, 10); // 40 replies in 0.4 s, then silence
    replies(e, '198.18.0.36', 0, 400, 10, 1); // the same, but each TC comes back over TCP
    expect(e.budgets.settle(e.settings, 1000)).toEqual([]); // the window (from 130 ms) has not ended
    expect(e.budgets.settle(e.settings, 2200)).toEqual([{ key: '198.18.0.35', level: 'prefix', charged: expect.any(Number) }]);
    // judged once: the next window is empty
    expect(e.budgets.settle(e.settings, 4300)).toEqual([]);
  });

  it('counts TCP queries as follow-ups only from a prefix on rung 2', () => {
    const e = env();
    runQueryStages(ctx('198.18.0.40', 'tcp'), e, 0);
    replies(e, '198.18.0.40', 0, 100, 10);
    expect(e.counters.tcpFollowUps).toBe(0);
    replies(e, '198.18.0.40', 100, 300, 10);
    runQueryStages(ctx('198.18.0.40', 'tcp'), e, 300);
    expect(e.counters.tcpFollowUps).toBe(1);
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
  it('catch a flood spread over 200 addresses of one /24, each under its own budget', () => {
    const e = env();
    const got: Verdict[] = [];
    // each address gets one 900-byte reply every 2 s (under 50kb/min), 100 replies a second in all
    for (let t = 0; t < 6000; t += 10) {
      const host = (t / 10) % 200;
      got.push(runResponseStages(ctx(`198.18.7.${host + 1}`), reply900, e, t));
    }
    const truncated = got.findIndex((v) => v.kind === 'answer');
    // the /24 bucket (8 x 12320 bytes) runs out after about 110 replies
    expect(truncated).toBeGreaterThan(100);
    expect(truncated).toBeLessThan(120);
    const dropped = got.find((v) => v.kind === 'drop');
    expect(dropped).toMatchObject({ offender: { prefix: '198.18.7.0/24', level: 'aggregate', cause: 'no_followup' } });
    // no single /32 went over its own budget
    expect(e.budgets.truncatingCount('prefix')).toBe(0);
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

  it('an IPv6 /48 aggregate over many /64s', () => {
    const e = env();
    let dropped: Verdict | undefined;
    for (let t = 0; t < 6000 && dropped === undefined; t += 10) {
      const v = runResponseStages(ctx(`fd00:a3b1:0:${((t / 10) % 200).toString(16)}::1`), reply900, e, t);
      if (v.kind === 'drop') dropped = v;
    }
    expect(dropped).toMatchObject({ offender: { prefix: 'fd00:a3b1:0:0:0:0:0:0/48', level: 'aggregate' } });
  });
});
