// The ladder's once-a-second judging (docs/defence.md), one function for the
// live process (dataplane.ts, on a timer) and the replay (replay/runner.ts, on
// the capture's clock), so both judge with the same code: the budget table's
// judging (quiet keys come down, prefixes whose window ended without TCP
// follow-ups are escalated), each escalation handed to the enforcer as an
// offender. Pure apart from `onOffender`; time is a parameter.
import { escalatedOffender } from './large-response.js';
import type { PolicyEnv } from './env.js';
import type { Offender } from './verdict.js';

/** Judges every key on rung 2 at `now`; returns how many prefixes were escalated. */
export function ladderTick(env: PolicyEnv, now: number, onOffender: (o: Offender, now: number) => unknown): number {
  const escalations = env.budgets.judgeTruncating(env.settings, now);
  for (const e of escalations) onOffender(escalatedOffender(e, env), now);
  return escalations.length;
}
