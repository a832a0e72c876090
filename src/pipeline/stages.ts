// The packet path of docs/packet-path.md, in order (CONTRIBUTING.md rule 1). Step 1 (malformed) is the
// parse in dns/query.ts, done by the listener before any stage; steps 4 and 7-8
// are the backend pool and enforce/, which act on these verdicts.
import { blockedClient } from '../policy/blocked-client.js';
import { anyToTcp } from '../policy/any-to-tcp.js';
import { sizeToTcp } from '../policy/size-to-tcp.js';
import { largeResponseBudget, tcpFollowUp } from '../policy/large-response.js';
import type { PolicyEnv } from '../policy/env.js';
import type { QueryContext } from '../policy/context.js';
import { FORWARD, type LocalAnswerReason, type Offender, type TruncateReason, type Verdict } from '../policy/verdict.js';
import type { Counters } from '../metrics/counters.js';
import { OPCODE_QUERY, readOpcode } from '../dns/header.js';
import { buildNotimp } from '../dns/local-answer.js';

/**
 * Packet-path steps 2-3, in the order a query takes them: the block check, the
 * opcode gate (a blocked client gets nothing, not even NOTIMP), any-to-tcp.
 * `forward` means: on to a backend (step 4).
 */
export function runQueryStages(ctx: QueryContext, env: PolicyEnv<Counters>, now: number): Verdict {
  return blockedClient(ctx, env, now) ?? opcodeGate(ctx) ?? anyToTcp(ctx, env.settings) ?? FORWARD;
}

/**
 * Packet-path steps 5-6 on a backend reply of `replyBytes`: they judge it by its
 * length alone (so the replay needs no copy of it). `forward` sends the reply as
 * it is, `answer` sends the stand-in instead. The budget is charged with what is
 * actually sent.
 */
export function runResponseStages(ctx: QueryContext, replyBytes: number, env: PolicyEnv<Counters>, now: number): Verdict {
  // a client blocked while its query was at the backend gets nothing either, and the reply
  // is neither charged nor judged again (it would count one escalation per reply in flight)
  const blocked = blockedClient(ctx, env, now);
  if (blocked !== null) return blocked;
  const truncated = sizeToTcp(ctx, replyBytes, env.settings);
  const sentBytes = truncated?.kind === 'answer' ? truncated.wire.length : replyBytes;
  return largeResponseBudget(ctx, sentBytes, env, now) ?? truncated ?? FORWARD;
}

/**
 * The opcode gate, after step 2 (a blocked client gets nothing, not even this):
 * only QUERY goes to a backend. The recursor ignores UPDATE and takes no NOTIFY
 * by default, so a forwarded one would hold an in-flight slot until
 * backend_timeout_ms and earn a SERVFAIL to a spoofable source. Returns the
 * NOTIMP answer (never larger than the query), or null for a QUERY. The caller
 * counts it in localAnswers.notimp.
 */
function opcodeAnswer(ctx: QueryContext): Buffer | null {
  return readOpcode(ctx.parsed.flags) === OPCODE_QUERY ? null : buildNotimp(ctx.query, ctx.parsed);
}

/** opcodeAnswer() as a stage: a local `answer` with reason notimp. */
function opcodeGate(ctx: QueryContext): Verdict | null {
  const notimp = opcodeAnswer(ctx);
  return notimp === null ? null : { kind: 'answer', wire: notimp, reason: 'notimp' };
}

/**
 * A TCP query the backend answered (not one answered locally, dropped or
 * failed): the ladder may count it as the follow-up of a TC answer
 * (docs/defence.md). The TCP session calls it with the answer; the replay with
 * a forwarded query, whose answer the capture holds.
 */
export function tcpAnswered(ctx: QueryContext, env: PolicyEnv<Counters>, now: number): void {
  tcpFollowUp(ctx, env, now);
  env.realClients?.tcpAnswered(ctx, env);
}

/** judgeQuery(): the query goes on to a backend */
export const TO_BACKEND = 'to_backend';
/** judgeUdpReply(): the backend's reply goes to the client as it is */
export const AS_IS = 'as_is';

/**
 * What a query, over UDP or TCP, comes to after steps 2-3 and the opcode gate,
 * counted in env.counters: null when it is dropped, the wire of a local answer
 * (TC or NOTIMP) to send back, or TO_BACKEND. The live UDP path, the TCP
 * session and the replay share it, so all three count and decide alike
 * (docs/replay.md).
 */
export function judgeQuery(ctx: QueryContext, env: PolicyEnv<Counters>, now: number): Buffer | typeof TO_BACKEND | null {
  const c = env.counters;
  const verdict = runQueryStages(ctx, env, now);
  if (verdict.kind === 'drop') {
    c.dropped[verdict.reason]++;
    return null;
  }
  if (verdict.kind === 'answer') {
    countAnswer(c, verdict.reason);
    return verdict.wire;
  }
  return TO_BACKEND;
}

/**
 * What a backend's UDP reply of `replyBytes` comes to after steps 5-7, counted
 * in env.counters: null when it is dropped, the wire of its TC stand-in, or
 * AS_IS. An offender goes to `onOffender` (enforce/), whose false (block.mode
 * off) lets the reply that tripped it go out as it is.
 */
export function judgeUdpReply(
  ctx: QueryContext, replyBytes: number, env: PolicyEnv<Counters>, now: number, onOffender: (o: Offender, now: number) => boolean,
): Buffer | typeof AS_IS | null {
  const c = env.counters;
  const verdict = runResponseStages(ctx, replyBytes, env, now);
  if (verdict.kind === 'drop') {
    if (verdict.offender === undefined || onOffender(verdict.offender, now)) {
      c.dropped[verdict.reason]++;
      return null;
    }
    return AS_IS;
  }
  if (verdict.kind === 'answer') {
    countAnswer(c, verdict.reason);
    return verdict.wire;
  }
  return AS_IS;
}

/** A local answer, counted by its reason: TC=1 by why it was truncated, or NOTIMP. */
function countAnswer(c: Counters, reason: TruncateReason | LocalAnswerReason): void {
  if (reason === 'notimp') c.localAnswers.notimp++;
  else c.truncated[reason]++;
}
