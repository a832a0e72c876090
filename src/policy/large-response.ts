// Packet-path steps 6-7 — large-response budgets and the ladder over them
// (docs/defence.md). Reads policy.large_response.*, policy.ladder.*,
// block.allowlist. Feeds ampguard_large_responses_total,
// ampguard_truncated_total{reason="budget"} (through the listener) and
// ampguard_would_truncate_total (block.mode off).
// Only what is actually sent over UDP costs: a TC=1 stand-in is small and free,
// and TCP cannot be spoofed. A reply the prefix (or one of its networks)
// cannot afford becomes a TC=1 stand-in; a prefix that then does not come back
// over TCP is an offender, and the reply that tripped it is dropped. A network
// is never an offender: it stays on TC for its large replies.
import { prefixKey } from './prefix.js';
import { anyCidrContains } from '../net/cidr.js';
import { buildTruncated } from '../dns/local-answer.js';
import { questionHash } from './ladder.js';
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
  // talkers show it) but not its networks, whose budgets it must not spend for its neighbours
  if (s.allowlist.length > 0 && anyCidrContains(s.allowlist, ctx.clientAddress)) {
    budgets.chargeAt('prefix', prefix, sentBytes, s.prefixBudget, now, s);
    return sentLarge(c);
  }
  let level: BudgetLevel = 'prefix';
  let key = prefix;
  let rule = s.prefixBudget;
  if (budgets.chargeAt('prefix', prefix, sentBytes, rule, now, s)) {
    const agg = s.aggregate;
    if (!agg.enabled) return sentLarge(c);
    level = 'aggregate';
    key = prefixKey(ctx.clientAddress, ctx.family, agg.prefixV4, agg.prefixV6);
    rule = agg.rule;
    if (budgets.chargeAt('aggregate', key, sentBytes, rule, now, s)) {
      const wide = agg.wide;
      const bits = ctx.family === 4 ? wide.prefixV4 : wide.prefixV6;
      if (!wide.enabled || bits === 0) return sentLarge(c);
      const net = key;
      key = prefixKey(ctx.clientAddress, ctx.family, bits, bits);
      rule = wide.rule;
      if (budgets.chargeAt('aggregate', key, sentBytes, rule, now, s)) return sentLarge(c);
      budgets.refund('aggregate', net, sentBytes, agg.rule);
    }
    // the reply is not sent as it is: the prefix gets back what it was charged for it
    budgets.refund('prefix', prefix, sentBytes, s.prefixBudget);
  }
  // a network over budget gets TC for its large replies and is never blocked: its small
  // answers keep flowing to everyone in it, and a spoofer cannot cut a network off (docs/defence.md)
  if (level === 'aggregate' || s.ladder.enabled) {
    const question = level === 'prefix' ? questionHash(ctx.query, ctx.parsed.qEnd, 0) : 0;
    if (budgets.overBudget(level, key, rule, s, now, question) === 'truncate') {
      if (s.dryRun) {
        c.wouldTruncate++;
        return sentLarge(c);
      }
      return { kind: 'answer', wire: buildTruncated(ctx.query, ctx.parsed), reason: 'budget' };
    }
  }
  const cause = s.ladder.enabled ? 'no_followup' : 'over_budget';
  c.escalations[`prefix:${cause}`]++;
  // block.mode off sends the tripping reply too (the enforcer says so): it is counted as sent
  if (s.dryRun) c.largeResponses++;
  return {
    kind: 'drop',
    reason: 'rate',
    offender: { address: ctx.clientAddress, prefix, family: ctx.family, charged: budgets.spent(prefix, s, 'prefix') + sentBytes, level: 'prefix', cause },
  };
}

/**
 * A TCP query the backend answered: a follow-up of the client's prefix when
 * the prefix is on rung 2 and the query repeats a question answered with TC to
 * it within policy.ladder.window_ms (docs/defence.md). Counted per prefix only:
 * a host's TCP queries can match only the questions truncated to its own
 * prefix, so it cannot vouch for its spoofed neighbours; networks are never
 * judged (never blocked). A hash of the question and a peek per answered query.
 */
export function tcpFollowUp(ctx: QueryContext, env: PolicyEnv, now: number): void {
  const s = env.settings;
  if (!s.ladder.enabled) return;
  const prefix = prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6);
  if (env.budgets.followUp('prefix', prefix, questionHash(ctx.query, ctx.parsed.qEnd, 0), s, now)) env.counters.tcpFollowUps++;
}

/** A large reply that goes out in full (ampguard_large_responses_total counts only those). */
function sentLarge(c: PolicyEnv['counters']): null {
  c.largeResponses++;
  return null;
}

/**
 * A key the once-a-second judgement escalated (BudgetTable.judgeTruncating): the
 * offender for enforcement, counted like one from the packet path. No client
 * address is at hand, so the network's own address stands for it.
 */
export function escalatedOffender(e: Escalation, env: PolicyEnv): Offender {
  const slash = e.key.indexOf('/');
  const address = slash < 0 ? e.key : e.key.slice(0, slash);
  env.counters.escalations['prefix:no_followup']++;
  return { address, prefix: e.key, family: address.includes(':') ? 6 : 4, charged: e.charged, level: e.level, cause: 'no_followup' };
}
