// The policy stages on plain data with a fake clock: each threshold checked on both sides.
import { describe, expect, it } from 'vitest';
import { TO_BACKEND, judgeQuery, runQueryStages, runResponseStages } from '../../../src/pipeline/stages.js';
import { parseQuery } from '../../../src/dns/query.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { QueryContext } from '../../../src/policy/context.js';
import { query } from '../../helpers/wire.js';

function env(policy: object = {}, block: object = {}): PolicyEnv<Counters> {
  return {
    settings: compilePolicy(configSchema.parse({ policy, block })),
    budgets: new BudgetTable(100),
    blocks: new BlockTable(100),
    counters: new Counters(),
  };
}

function ctx(type: string, opts: { udpSize?: number; proto?: 'udp' | 'tcp'; address?: string } = {}): QueryContext {
  const q = query('x.example.test', type, 1, { udpSize: opts.udpSize });
  return { query: q, parsed: parseQuery(q)!, clientAddress: opts.address ?? '198.18.0.1', family: 4, proto: opts.proto ?? 'udp' };
}

// the stages judge a reply by its length alone
const reply = (n: number): number => n;

describe('response stages', () => {
  it('drop a reply to a client blocked while its query was at the backend, unjudged: one escalation per block, not per reply in flight', () => {
    const e = env({ ladder: { enabled: false } });
    const big = ctx('TXT', { udpSize: 4096 });
    let escalated = 0;
    for (let i = 0; i < 30; i++) {
      const v = runResponseStages(big, reply(900), e, i);
      if (v.kind === 'drop' && v.offender !== undefined) {
        escalated++;
        e.blocks.add('198.18.0.1', 60_000, i);
      }
    }
    expect(escalated).toBe(1);
    expect(e.counters.escalations['prefix:over_budget']).toBe(1);
    expect(runResponseStages(big, reply(900), e, 31)).toMatchObject({ kind: 'drop', reason: 'blocked' });
    // a small reply to the blocked client too: it gets nothing, as its queries get nothing
    expect(runResponseStages(ctx('A'), reply(60), e, 32)).toMatchObject({ kind: 'drop', reason: 'blocked' });
    // its neighbour is served
    expect(runResponseStages(ctx('A', { address: '198.18.0.2' }), reply(60), e, 33).kind).toBe('forward');
  });
});

describe('query stages', () => {
  it('answers ANY over UDP with TC, forwards it over TCP or when any_to_tcp is off', () => {
    const v = runQueryStages(ctx('ANY'), env(), 0);
    expect(v.kind === 'answer' && v.reason).toBe('any');
    expect(runQueryStages(ctx('ANY', { proto: 'tcp' }), env(), 0).kind).toBe('forward');
    expect(runQueryStages(ctx('ANY'), env({ any_to_tcp: false }), 0).kind).toBe('forward');
    expect(runQueryStages(ctx('A'), env(), 0).kind).toBe('forward');
  });

  it('takes the stages in the order a query does: block check, opcode gate, any-to-tcp; judgeQuery counts each', () => {
    const notify = (c: QueryContext): QueryContext => {
      const q = Buffer.from(c.query);
      q[2] = (q[2]! & 0x87) | (4 << 3); // NOTIFY
      return { ...c, query: q, parsed: parseQuery(q)! };
    };
    const e = env();
    // an ANY NOTIFY over UDP: NOTIMP, not a TC answer
    const v = runQueryStages(notify(ctx('ANY')), e, 0);
    expect(v.kind === 'answer' && v.reason).toBe('notimp');
    const wire = judgeQuery(notify(ctx('ANY')), e, 0);
    expect(wire !== null && wire !== TO_BACKEND && wire[3]! & 15).toBe(4);
    expect(e.counters.localAnswers.notimp).toBe(1);
    expect(e.counters.truncated.any).toBe(0);
    // the same over TCP: NOTIMP too (one decision for both)
    expect(judgeQuery(notify(ctx('ANY', { proto: 'tcp' })), e, 0)).not.toBe(TO_BACKEND);
    expect(judgeQuery(ctx('ANY', { proto: 'tcp' }), e, 0)).toBe(TO_BACKEND);
    // a blocked client gets nothing, not even NOTIMP
    e.blocks.add('198.18.0.1', 10_000, 0);
    expect(runQueryStages(notify(ctx('ANY')), e, 1)).toMatchObject({ kind: 'drop', reason: 'blocked' });
    expect(judgeQuery(notify(ctx('ANY')), e, 1)).toBeNull();
    expect(e.counters.dropped.blocked).toBe(1);
  });

  it('drops UDP from a blocked client but never TCP', () => {
    const e = env();
    e.blocks.add('198.18.0.1', 100);
    expect(runQueryStages(ctx('A'), e, 50)).toMatchObject({ kind: 'drop', reason: 'blocked' });
    expect(runQueryStages(ctx('A', { proto: 'tcp' }), e, 50).kind).toBe('forward');
    expect(runQueryStages(ctx('A', { address: '198.18.0.2' }), e, 50).kind).toBe('forward');
    expect(runQueryStages(ctx('A'), e, 100).kind).toBe('forward');
  });
});

describe('response stages', () => {
  it('truncates above truncate_above and above the client EDNS size, not at them', () => {
    const e = env({ truncate_above: 1232 });
    expect(runResponseStages(ctx('TXT', { udpSize: 4096 }), reply(1232), e, 0).kind).toBe('forward');
    expect(runResponseStages(ctx('TXT', { udpSize: 4096 }), reply(1233), e, 0)).toMatchObject({ kind: 'answer', reason: 'size' });
    expect(runResponseStages(ctx('TXT', { udpSize: 900 }), reply(900), e, 0).kind).toBe('forward');
    expect(runResponseStages(ctx('TXT', { udpSize: 900 }), reply(901), e, 0).kind).toBe('answer');
    // no EDNS: the classic 512-byte limit; an advertised size under 512 counts as 512
    expect(runResponseStages(ctx('TXT'), reply(512), e, 0).kind).toBe('forward');
    expect(runResponseStages(ctx('TXT'), reply(513), e, 0).kind).toBe('answer');
    expect(runResponseStages(ctx('TXT', { udpSize: 100 }), reply(512), e, 0).kind).toBe('forward');
    expect(runResponseStages(ctx('TXT', { udpSize: 4096, proto: 'tcp' }), reply(60_000), e, 0).kind).toBe('forward');
  });

  it('charges only large replies actually sent: the 10th passes, the 11th trips (TC on the ladder, an offender without it)', () => {
    for (const ladder of [true, false]) {
      const e = env({ ladder: { enabled: ladder } });
      const c = ctx('TXT', { udpSize: 4096 });
      for (let i = 0; i < 50; i++) expect(runResponseStages(c, reply(699), e, 0).kind).toBe('forward');
      expect(e.counters.largeResponses).toBe(0);
      for (let i = 0; i < 10; i++) expect(runResponseStages(c, reply(1232), e, 0).kind, `reply ${i + 1}`).toBe('forward');
      const v = runResponseStages(c, reply(1232), e, 0);
      if (ladder) expect(v).toMatchObject({ kind: 'answer', reason: 'budget' });
      else expect(v).toMatchObject({ kind: 'drop', reason: 'rate', offender: { address: '198.18.0.1', prefix: '198.18.0.1', family: 4 } });
      // the 11th went out as a TC stand-in or not at all: not a large reply sent
      expect(e.counters.largeResponses).toBe(10);
    }
  });

  it('charges a truncated reply as the small TC answer it became', () => {
    const e = env();
    const c = ctx('TXT', { udpSize: 4096 });
    for (let i = 0; i < 100; i++) expect(runResponseStages(c, reply(3000), e, 0)).toMatchObject({ kind: 'answer', reason: 'size' });
    expect(e.counters.largeResponses).toBe(0);
  });

  it('never makes an allowlisted client an offender', () => {
    const e = env({}, { allowlist: ['198.18.0.0/24'] });
    const c = ctx('TXT', { udpSize: 4096 });
    for (let i = 0; i < 100; i++) expect(runResponseStages(c, reply(1200), e, 0).kind).toBe('forward');
  });

  it('keeps one budget per /24 when prefix_v4 is 24', () => {
    const e = env({ large_response: { prefix_v4: 24 }, ladder: { enabled: false } });
    for (let i = 0; i < 10; i++) runResponseStages(ctx('TXT', { udpSize: 4096, address: `198.18.0.${i}` }), reply(1232), e, 0);
    const v = runResponseStages(ctx('TXT', { udpSize: 4096, address: '198.18.0.200' }), reply(1232), e, 0);
    expect(v).toMatchObject({ kind: 'drop', offender: { prefix: '198.18.0.0/24' } });
  });
});
