// The once-a-second judging shared by the live process and the replay
// (policy/ladder-tick.ts): a window that ended without TCP follow-ups becomes an
// offender for the enforcer, counted; one with follow-ups, or not yet ended, does not.
import { describe, expect, it } from 'vitest';
import { runResponseStages, tcpAnswered } from '../../../src/pipeline/stages.js';
import { parseQuery } from '../../../src/dns/query.js';
import { compilePolicy } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { BudgetTable } from '../../../src/policy/budgets.js';
import { BlockTable } from '../../../src/policy/block-table.js';
import { Counters } from '../../../src/metrics/counters.js';
import { ladderTick } from '../../../src/policy/ladder-tick.js';
import type { PolicyEnv } from '../../../src/policy/env.js';
import type { QueryContext } from '../../../src/policy/context.js';
import type { Offender } from '../../../src/policy/verdict.js';
import { query } from '../../helpers/wire.js';

function ctx(address: string, proto: 'udp' | 'tcp' = 'udp'): QueryContext {
  const q = query('big.example.test', 'TXT', 1, { udpSize: 4096 });
  return { query: q, parsed: parseQuery(q)!, clientAddress: address, family: 4, proto };
}

describe('ladderTick', () => {
  it('hands the prefixes judged without follow-ups to the enforcer, once, and counts them', () => {
    const e: PolicyEnv<Counters> = { settings: compilePolicy(configSchema.parse({})), budgets: new BudgetTable(1000), blocks: new BlockTable(1000), counters: new Counters() };
    for (let t = 0; t < 400; t += 10) {
      runResponseStages(ctx('198.18.0.35'), 900, e, t);
      const v = runResponseStages(ctx('198.18.0.36'), 900, e, t);
      if (v.kind === 'answer') tcpAnswered(ctx('198.18.0.36', 'tcp'), e, t + 1);
    }
    const offenders: Offender[] = [];
    const onOffender = (o: Offender): boolean => offenders.push(o) > 0;
    expect(ladderTick(e, 1000, onOffender)).toBe(0); // the window has not ended
    expect(ladderTick(e, 2200, onOffender)).toBe(1);
    expect(offenders).toEqual([{ address: '198.18.0.35', prefix: '198.18.0.35', family: 4, charged: expect.any(Number), level: 'prefix', cause: 'no_followup' }]);
    expect(e.counters.escalations['prefix:no_followup']).toBe(1);
    expect(ladderTick(e, 4300, onOffender)).toBe(0);
  });
});
