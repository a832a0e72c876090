// The graduated defence of a prefix over its large-response budget (docs/defence.md).
// Reads policy.ladder.*. Pure: the state lives in the budget table's entries,
// time is a parameter.
//
// Rung 1: under budget, replies go out as they are.
// Rung 2: over budget; each large reply it cannot afford becomes a TC=1 stand-in
//         (about the size of the query, so no amplification), and we count the
//         TC answers sent and the TCP queries that come back from the prefix.
// Rung 3: a window ends with at least `minTc` TC answers and fewer TCP follow-ups
//         than `followUpShare` of them: the prefix is an offender (kernel block).
// A spoofed victim never sent the queries, so it never comes back over TCP; a
// busy NAT's stubs do, and it stays on rung 2 for as long as it is over budget.
// The prefix falls back to rung 1 when its bucket has refilled.

export const RUNG_OPEN = 1;
export const RUNG_TRUNCATING = 2;
export type Rung = typeof RUNG_OPEN | typeof RUNG_TRUNCATING;

export interface LadderState {
  rung: Rung;
  /** when the current judging window began */
  windowStart: number;
  /** ladder TC answers sent in the window */
  tcSent: number;
  /** TCP queries from the prefix in the window */
  followUps: number;
}

export interface LadderSettings {
  /** false: today's one step, over budget means blocked */
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly minTc: number;
  /** follow-ups / TC answers below this after minTc answers: escalate */
  readonly followUpShare: number;
}

export type OverBudgetStep = 'truncate' | 'escalate';

/** A large reply the prefix cannot afford: climb to rung 2, or judge the window that ended. */
export function onOverBudget(s: LadderState, l: LadderSettings, now: number): OverBudgetStep {
  if (s.rung === RUNG_OPEN) {
    s.rung = RUNG_TRUNCATING;
    openWindow(s, now);
  } else if (judge(s, l, now)) {
    return 'escalate';
  }
  s.tcSent++;
  return 'truncate';
}

/**
 * Judges a window that has ended (and opens the next): true when it held at
 * least minTc TC answers and too few TCP follow-ups. Called by the next
 * over-budget reply, and once a second for every key on rung 2, so a flood
 * that stops is judged too.
 */
export function judge(s: LadderState, l: LadderSettings, now: number): boolean {
  if (s.rung !== RUNG_TRUNCATING || now - s.windowStart < l.windowMs) return false;
  const escalate = s.tcSent >= l.minTc && s.followUps < l.followUpShare * s.tcSent;
  openWindow(s, now);
  return escalate;
}

/** A TCP query from the prefix: counts only while it is being judged. */
export function onFollowUp(s: LadderState, n: number): void {
  if (s.rung === RUNG_TRUNCATING) s.followUps += n;
}

/** The bucket is full again: back to rung 1. */
export function onRefilled(s: LadderState): void {
  s.rung = RUNG_OPEN;
  s.tcSent = 0;
  s.followUps = 0;
}

function openWindow(s: LadderState, now: number): void {
  s.windowStart = now;
  s.tcSent = 0;
  s.followUps = 0;
}
