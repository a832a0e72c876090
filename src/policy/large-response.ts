// SPEC steps 6-7 — large-response budgets. Reads policy.large_response.*,
// block.allowlist. Feeds ampguard_large_responses_total.
// Only what is actually sent over UDP costs: a TC=1 stand-in is small and free,
// and TCP cannot be spoofed. A prefix over budget becomes an offender; the reply
// that tripped the limit is dropped (unless enforcement is off, see enforce/).
import { prefixKey } from './prefix.js';
import { anyCidrContains } from '../config/cidr.js';
import type { QueryContext } from '../pipeline/context.js';
import type { Verdict } from '../pipeline/verdict.js';
import type { PolicyEnv } from './env.js';

export function largeResponseBudget(ctx: QueryContext, sentBytes: number, env: PolicyEnv, now: number): Verdict | null {
  const s = env.settings;
  if (ctx.proto !== 'udp' || sentBytes < s.largeMinBytes) return null;
  env.counters.largeResponses++;
  const prefix = prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6);
  if (env.budgets.charge(prefix, sentBytes, s, now)) return null;
  if (anyCidrContains(s.allowlist, ctx.clientAddress)) return null;
  return {
    kind: 'drop',
    reason: 'rate',
    offender: { address: ctx.clientAddress, prefix, family: ctx.family, charged: env.budgets.spent(prefix, s) + sentBytes },
  };
}
