// The graduated defence of a prefix over its large-response budget (docs/defence.md).
// Reads policy.ladder.*. Pure: the state lives in the budget table's entries,
// time is a parameter.
//
// Rung 1: under budget, replies go out as they are.
// Rung 2: over budget; each large reply it cannot afford becomes a TC=1 stand-in
//         (about the size of the query, so no amplification), and we count the
//         TC answers sent and the TCP follow-ups that come back: a TCP query
//         that repeats a question answered with TC to the key within the
//         window, and that the backend answered (questionHash, matchFollowUp).
// Rung 3: a window ends with at least `minTc` TC answers and fewer TCP follow-ups
//         than `followUpShare` of them: the prefix is an offender (kernel block).
//         The TC answers of a window's last graceMs count in the next window:
//         their follow-ups may not be back yet.
//         Only a prefix (/32, /64) climbs to rung 3; a network stays on rung 2.
// A spoofed victim never sent the queries, so it never comes back over TCP; a
// busy NAT's stubs do, and it stays on rung 2 for as long as it is over budget.
// A key comes down to rung 1 only after a quiet spell (`quietMs` without a
// reply it had to truncate), never because its bucket refilled: a flood that
// goes on keeps it on rung 2, whatever the bucket holds.
import type { LadderSettings } from '../config/compile.js';

const RUNG_OPEN = 1;
export const RUNG_TRUNCATING = 2;
type Rung = typeof RUNG_OPEN | typeof RUNG_TRUNCATING;

/** questions answered with TC remembered per key on rung 2, besides the first (a ring: the oldest is overwritten) */
const TC_QUESTIONS = 16;

export interface LadderState {
  rung: Rung;
  /** when the current judging window began */
  windowStart: number;
  /** ladder TC answers sent in the window */
  tcSent: number;
  /**
   * of those, the ones sent in the window's last graceMs: their follow-ups
   * may still be on the way when the window is judged (a stub's TCP retry,
   * the backend's answer, another worker's or fleet node's relay), so they
   * are judged with the next window instead
   */
  tcLate: number;
  /** TCP follow-ups of the window (matched questions the backend answered) */
  followUps: number;
  /** follow-ups of the late TC answers (tcLate): they are judged with those, in the next window */
  followUpsLate: number;
  /** when the key last had a large reply truncated (rung 2), for the quiet spell */
  lastTcAt: number;
  /** the first question answered with TC (its hash; 0 = none or used) and when */
  tcQ0: number;
  tcQ0At: number;
  /**
   * the later ones, a ring of [hash, time] pairs, made at the second TC answer
   * only: a sprayed source that gets one TC answer costs no allocation
   */
  tcRing: Float64Array | null;
  tcNext: number;
}

export type OverBudgetStep = 'truncate' | 'escalate';

/** A large reply the key cannot afford: climb to rung 2, or judge the window that ended. */
export function onOverBudget(s: LadderState, l: LadderSettings, now: number, judged = true): OverBudgetStep {
  if (s.rung === RUNG_OPEN) {
    s.rung = RUNG_TRUNCATING;
    openWindow(s, now);
  } else if (judge(s, l, now) && judged) {
    return 'escalate';
  }
  s.tcSent++;
  if (now - s.windowStart >= l.windowMs - graceMs(l)) s.tcLate++;
  s.lastTcAt = now;
  return 'truncate';
}

/** The end of a window whose TC answers are judged with the next one: a quarter of it, at most 500 ms. */
function graceMs(l: LadderSettings): number {
  return Math.min(500, l.windowMs / 4);
}


/**
 * Judges a window that has ended (and opens the next): true when it held at
 * least minTc TC answers and too few TCP follow-ups. Called by the next
 * over-budget reply, and once a second for every key on rung 2, so a flood
 * that stops is judged too.
 */
export function judge(s: LadderState, l: LadderSettings, now: number): boolean {
  if (s.rung !== RUNG_TRUNCATING || now - s.windowStart < l.windowMs) return false;
  const judged = s.tcSent - s.tcLate;
  const escalate = judged >= l.minTc && s.followUps < l.followUpShare * judged;
  const late = s.tcLate;
  const lateFollowUps = s.followUpsLate;
  openWindow(s, now);
  s.tcSent = late;
  s.followUps = lateFollowUps;
  return escalate;
}

/** Remembers a question answered with TC (its hash, from questionHash), for matchFollowUp. */
export function rememberTc(s: LadderState, hash: number, now: number): void {
  if (s.tcQ0 === 0 && s.tcRing === null) {
    s.tcQ0 = hash;
    s.tcQ0At = now;
    return;
  }
  const ring = s.tcRing ?? (s.tcRing = new Float64Array(2 * TC_QUESTIONS));
  const i = s.tcNext;
  ring[2 * i] = hash;
  ring[2 * i + 1] = now;
  s.tcNext = i + 1 === TC_QUESTIONS ? 0 : i + 1;
}

/**
 * A TCP query the backend answered, with the hash of its question: a follow-up
 * when the key is on rung 2 and that question was answered with TC to it within
 * `maxAgeMs`. Each TC answer vouches for one follow-up at most (it is used up),
 * so repeating one question over TCP does not count twice.
 */
export function matchFollowUp(s: LadderState, hash: number, now: number, maxAgeMs: number): boolean {
  if (s.rung !== RUNG_TRUNCATING) return false;
  if (s.tcQ0 === hash && now - s.tcQ0At <= maxAgeMs) {
    s.tcQ0 = 0;
    countFollowUp(s, s.tcQ0At, maxAgeMs);
    return true;
  }
  const ring = s.tcRing;
  if (ring === null) return false;
  for (let i = 0; i < 2 * TC_QUESTIONS; i += 2) {
    if (ring[i] === hash && now - ring[i + 1]! <= maxAgeMs) {
      ring[i] = 0;
      countFollowUp(s, ring[i + 1]!, maxAgeMs);
      return true;
    }
  }
  return false;
}

/** A follow-up counts in the window its TC answer is judged in: a late one's with the next window. */
function countFollowUp(s: LadderState, tcAt: number, windowMs: number): void {
  if (tcAt - s.windowStart >= windowMs - Math.min(500, windowMs / 4)) s.followUpsLate++;
  else s.followUps++;
}

/**
 * block.mode off (a dry run): no TC answer went out, so no client can repeat
 * one over TCP; any TCP query the backend answered for a key on rung 2 counts,
 * the best a dry run can see of a client that would come back (docs/defence.md).
 */
export function matchFollowUpDryRun(s: LadderState): boolean {
  if (s.rung !== RUNG_TRUNCATING) return false;
  s.followUps++;
  return true;
}

/** Held on rung 2: it had more than one TC answer (a sprayed source that got one is not). */
export function held(s: LadderState): boolean {
  return s.rung === RUNG_TRUNCATING && (s.tcSent > 1 || s.lastTcAt > s.windowStart);
}

/** Whether a key on rung 2 has been quiet long enough to come down (checked by the table). */
export function quietSpellOver(s: LadderState, l: LadderSettings, now: number): boolean {
  return s.rung === RUNG_TRUNCATING && now - s.lastTcAt >= l.quietMs;
}

/** The quiet spell is over: back to rung 1. */
export function comeDown(s: LadderState): void {
  s.rung = RUNG_OPEN;
  s.tcSent = 0;
  s.tcLate = 0;
  s.followUps = 0;
  s.followUpsLate = 0;
  s.tcQ0 = 0;
  if (s.tcRing !== null) s.tcRing.fill(0);
}

function openWindow(s: LadderState, now: number): void {
  s.windowStart = now;
  s.tcSent = 0;
  s.tcLate = 0;
  s.followUps = 0;
  s.followUpsLate = 0;
}

/**
 * A 32-bit hash (FNV-1a) of a question: its name, case folded, type and class,
 * bytes [12, qEnd) of the message, mixed with `seed` (0, or the hash of the
 * prefix a network's TC answer went to). Never 0, which marks an empty slot.
 * No allocation: a loop over some 20-60 bytes.
 */
export function questionHash(msg: Buffer, qEnd: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) | 0;
  for (let i = 12; i < qEnd; i++) {
    let b = msg[i]!;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    h = Math.imul(h ^ b, 0x01000193);
  }
  return h === 0 ? 1 : h;
}
