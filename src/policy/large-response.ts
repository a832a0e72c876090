// Packet-path steps 6-7 — large-response budgets and the ladder over them
// (docs/defence.md). Reads policy.large_response.*, policy.ladder.*,
// block.allowlist. Feeds ampguard_large_responses_total,
// ampguard_truncated_total{reason="budget"} (through the listener) and
// ampguard_would_truncate_total (block.mode off).
// Only what is actually sent over UDP costs: a TC=1 stand-in is small and free,
// and TCP cannot be spoofed. A reply the prefix (or its aggregate network)
// cannot afford becomes a TC=1 stand-in; a prefix that then does not come back
// over TCP is an offender, and the reply that tripped it is dropped.
import { prefixKey } from './prefix.js';
import { anyCidrContains } from '../net/cidr.js';
import { buildTruncated } from '../dns/local-answer.js';
import type { QueryContext } from './context.js';
import type { Verdict } from './verdict.js';
import type { BudgetLevel, Escalation } from './budgets.js';
import type { Offender } from './verdict.js';
import type { PolicyEnv } from './env.js';

export function largeResponseBudget(ctx: QueryContext, sentBytes: number, env: PolicyEnv, now: number): Verdict | null {
  const s = env.settings;
  if (ctx.proto !== 'udp' || sentBytes < s.largeMinBytes) return null;
  const c = env.counters;
  const budgets = env.budgets;
  const prefix = prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6);
  // an allowlisted client is never truncated or blocked: its prefix is charged (the top
  // talkers show it) but not its network, whose budget it must not spend for its neighbours
  if (s.allowlist.length > 0 && anyCidrContains(s.allowlist, ctx.clientAddress)) {
    budgets.chargeAt('prefix', prefix, sentBytes, s.prefixBudget, now);
    return sentLarge(c);
  }
  let level: BudgetLevel = 'prefix';
  let key = prefix;
  if (budgets.chargeAt('prefix', prefix, sentBytes, s.prefixBudget, now)) {
    const agg = s.aggregate;
    if (!agg.enabled) return sentLarge(c);
    key = prefixKey(ctx.clientAddress, ctx.family, agg.prefixV4, agg.prefixV6);
    if (budgets.chargeAt('aggregate', key, sentBytes, agg.rule, now)) return sentLarge(c);
    // the reply is not sent as it is: the prefix gets back what it was charged for it
    budgets.refund('prefix', prefix, sentBytes, s.prefixBudget);
    level = 'aggregate';
  }
  if (s.ladder.enabled && budgets.overBudget(level, key, s, now) === 'truncate') {
    if (s.dryRun) {
      c.wouldTruncate++;
      return sentLarge(c);
    }
    return { kind: 'answer', wire: buildTruncated(ctx.query, ctx.parsed), reason: 'budget' };
  }
  const cause = s.ladder.enabled ? 'no_followup' : 'over_budget';
  c.escalations[`${level}:${cause}`]++;
  // block.mode off sends the tripping reply too (the enforcer says so): it is counted as sent
  if (s.dryRun) c.largeResponses++;
  return {
    kind: 'drop',
    reason: 'rate',
    offender: { address: ctx.clientAddress, prefix: key, family: ctx.family, charged: budgets.spent(key, s, level) + sentBytes, level, cause },
  };
}

/**
 * A TCP query: a follow-up of a prefix (and aggregate) being judged on the
 * ladder. A peek per TCP query, nothing kept for a prefix not on rung 2.
 */
export function tcpFollowUp(ctx: QueryContext, env: PolicyEnv): void {
  const s = env.settings;
  if (!s.ladder.enabled) return;
  const budgets = env.budgets;
  const prefix = prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6);
  let counted = budgets.followUp('prefix', prefix, 1);
  if (s.aggregate.enabled) {
    const agg = prefixKey(ctx.clientAddress, ctx.family, s.aggregate.prefixV4, s.aggregate.prefixV6);
    if (budgets.followUp('aggregate', agg, 1)) counted = true;
  }
  if (counted) env.counters.tcpFollowUps++;
}

/** A large reply that goes out in full (ampguard_large_responses_total counts only those). */
function sentLarge(c: PolicyEnv['counters']): null {
  c.largeResponses++;
  return null;
}

/**
 * A key the once-a-second judgement escalated (BudgetTable.settle): the
 * offender for enforcement, counted like one from the packet path. No client
 * address is at hand, so the network's own address stands for it.
 */
export function settledOffender(e: Escalation, env: PolicyEnv): Offender {
  const slash = e.key.indexOf('/');
  const address = slash < 0 ? e.key : e.key.slice(0, slash);
  env.counters.escalations[`${e.level}:no_followup`]++;
  return { address, prefix: e.key, family: address.includes(':') ? 6 : 4, charged: e.charged, level: e.level, cause: 'no_followup' };
}
