// The graduated defence of a prefix over its large-response budget (docs/defence.md).
// Reads policy.ladder.*. Pure: the state lives in the budget table's entries,
// time is a parameter.
//
// Rung 1: under budget, replies go out as they are.
// Rung 2: over budget; each large reply it cannot afford becomes a TC=1 stand-in
//         (about the size of the query, so no amplification), and we count the
//         TC answers sent and the TCP follow-ups that come back: a TCP query
//         that repeats a question answered with TC to the key in this window
//         or the one before, and that the backend answered (questionHash,
//         matchFollowUp).
// Rung 3: a window ends with at least `minTc` TC answers and no TCP follow-up at
//         all: the prefix is an offender (kernel block). One follow-up passes the
//         window, whatever the share: it proves a real client behind the prefix
//         that gets our TC answers, and a spoofer who sends more queries in its
//         name than it does must not get it blocked (a TC answer amplifies
//         nothing, so rung 2 is enough). `followUpShare` 0 turns escalation off.
//         The TC answers of a window's last graceMs count in the next window:
//         their follow-ups may not be back yet.
//         Only a prefix (/32, /64) climbs to rung 3; a network stays on rung 2.
// A spoofed victim never sent the queries, so it never comes back over TCP; a
// busy NAT's stubs do, and it stays on rung 2 for as long as it is over budget.
// The questions answered with TC are kept in bit sets a flood cannot push a real
// client's question out of (a spray of questions only sets more bits, which can
// only make a real client's retry match: never a block of the wrong client).
// A key comes down to rung 1 only after a quiet spell (`quietMs` without a
// reply it had to truncate), never because its bucket refilled: a flood that
// goes on keeps it on rung 2, whatever the bucket holds.
import type { LadderSettings } from '../config/compile.js';

const RUNG_OPEN = 1;
export const RUNG_TRUNCATING = 2;
type Rung = typeof RUNG_OPEN | typeof RUNG_TRUNCATING;

/** bits in each set of truncated questions (a question's hash picks one) */
const TC_BITS = 1024;
const TC_WORDS = TC_BITS / 32;
/** the three sets in tcBits: this window's, its last graceMs's, the previous window's */
const CUR = 0;
const LATE = TC_WORDS;
const PREV = 2 * TC_WORDS;

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
  /** TCP follow-ups of the window (truncated questions repeated over TCP, answered by the backend) */
  followUps: number;
  /** follow-ups of the late TC answers (tcLate): they are judged with those, in the next window */
  followUpsLate: number;
  /** when the key last had a large reply truncated (rung 2), for the quiet spell */
  lastTcAt: number;
  /** the first question answered with TC (its hash; 0 = none or used) and when */
  tcQ0: number;
  tcQ0At: number;
  /**
   * the later ones, as bits (hash mod 1024) in three sets: the window's own TC
   * answers, those of its last graceMs (judged with the next window), and the
   * previous window's (their retries may come after it was judged). Made at
   * the second TC answer only: a sprayed source that gets one costs nothing.
   */
  tcBits: Uint32Array | null;
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
  if (inGrace(s, l, now)) s.tcLate++;
  s.lastTcAt = now;
  return 'truncate';
}

/** `now` is in the window's last graceMs: a TC answer sent now is judged with the next window. */
function inGrace(s: LadderState, l: LadderSettings, now: number): boolean {
  return now - s.windowStart >= l.windowMs - graceMs(l);
}

/** The end of a window whose TC answers are judged with the next one: a quarter of it, at most 500 ms. */
function graceMs(l: LadderSettings): number {
  return Math.min(500, l.windowMs / 4);
}


/**
 * Judges a window that has ended (and opens the next): true when it held at
 * least minTc TC answers and not one TCP follow-up (followUpShare 0: never).
 * Called by the next over-budget reply, and once a second for every key on
 * rung 2, so a flood that stops is judged too.
 */
export function judge(s: LadderState, l: LadderSettings, now: number): boolean {
  if (s.rung !== RUNG_TRUNCATING || now - s.windowStart < l.windowMs) return false;
  const judged = s.tcSent - s.tcLate;
  const escalate = judged >= l.minTc && s.followUps === 0 && l.followUpShare > 0;
  const late = s.tcLate;
  const lateFollowUps = s.followUpsLate;
  openWindow(s, now);
  s.tcSent = late;
  s.followUps = lateFollowUps;
  return escalate;
}

/** Remembers a question answered with TC (its hash, from questionHash), for matchFollowUp. */
export function rememberTc(s: LadderState, l: LadderSettings, hash: number, now: number): void {
  if (s.tcQ0 === 0 && s.tcBits === null) {
    s.tcQ0 = hash;
    s.tcQ0At = now;
    return;
  }
  const bits = s.tcBits ?? (s.tcBits = new Uint32Array(3 * TC_WORDS));
  const b = hash & (TC_BITS - 1);
  bits[(inGrace(s, l, now) ? LATE : CUR) + (b >>> 5)]! |= 1 << (b & 31);
}

/**
 * A TCP query the backend answered, with the hash of its question: a follow-up
 * when the key is on rung 2 and that question was answered with TC to it in
 * this window or the one before (the first TC answer: within `maxAgeMs`). A
 * match clears its bit, so repeating one question over TCP does not count twice.
 * Hash 0 (a peer's note that the key answered over TCP, no question) never matches.
 */
export function matchFollowUp(s: LadderState, hash: number, now: number, maxAgeMs: number): boolean {
  if (s.rung !== RUNG_TRUNCATING || hash === 0) return false;
  if (s.tcQ0 === hash && now - s.tcQ0At <= maxAgeMs) {
    s.tcQ0 = 0;
    countFollowUp(s, s.tcQ0At, maxAgeMs);
    return true;
  }
  const bits = s.tcBits;
  if (bits === null) return false;
  const b = hash & (TC_BITS - 1);
  const word = b >>> 5;
  const mask = 1 << (b & 31);
  const set = (bits[CUR + word]! & mask) !== 0 ? CUR : (bits[LATE + word]! & mask) !== 0 ? LATE : (bits[PREV + word]! & mask) !== 0 ? PREV : -1;
  if (set < 0) return false;
  bits[set + word]! &= ~mask;
  // a late TC answer's follow-up counts with it, in the next window; a previous window's in this one
  if (set === LATE) s.followUpsLate++;
  else s.followUps++;
  return true;
}

/** A follow-up counts in the window its TC answer is judged in: a late one's with the next window. */
function countFollowUp(s: LadderState, tcAt: number, windowMs: number): void {
  if (tcAt - s.windowStart >= windowMs - Math.min(500, windowMs / 4)) s.followUpsLate++;
  else s.followUps++;
}

/** Another worker or fleet node matched a follow-up of the key: it counts in this window too. */
export function followUpElsewhere(s: LadderState): void {
  if (s.rung === RUNG_TRUNCATING) s.followUps++;
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
  if (s.tcBits !== null) s.tcBits.fill(0);
}

function openWindow(s: LadderState, now: number): void {
  const bits = s.tcBits;
  if (bits !== null) {
    // the window's questions (its late ones included) become the previous window's
    for (let i = 0; i < TC_WORDS; i++) {
      bits[PREV + i] = bits[CUR + i]! | bits[LATE + i]!;
      bits[CUR + i] = 0;
      bits[LATE + i] = 0;
    }
  }
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
