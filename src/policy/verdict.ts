// What a stage decides about a packet (CONTRIBUTING.md rule 2): the listener acts on it, the
// stages never touch a socket. Constant verdicts are shared to keep the hot path
// free of allocations.

export type DropReason =
  | 'malformed' | 'blocked' | 'rate' | 'backend_timeout' | 'overload'
  /** source port 0 or an unspecified source address: no answer could reach it (docs/hostile-input.md) */
  | 'bad_source'
  /** an unexpected error inside a fault barrier dropped the unit of work (pipeline/barrier.ts) */
  | 'internal_error';
/** answers ampguard makes itself other than TC=1: NOTIMP for opcodes it never forwards */
export type LocalAnswerReason = 'notimp';
/** any: ANY over UDP; size: reply too large; budget: the prefix is over its large-response budget (rung 2) */
export type TruncateReason = 'any' | 'size' | 'budget';

/** A prefix that went over its large-response budget (Packet-path step 7). */
export interface Offender {
  readonly address: string;
  readonly prefix: string;
  readonly family: 4 | 6;
  /** bytes (or replies, for a packet rate) charged within the current window when it tripped */
  readonly charged: number;
  /** which budget tripped: the client's prefix, or the aggregate network around it (then `prefix` is that network) */
  readonly level?: 'prefix' | 'aggregate';
  /** no_followup: judged on the ladder, no TCP came back; over_budget: the ladder is off */
  readonly cause?: 'no_followup' | 'over_budget';
}

export type Verdict =
  | { readonly kind: 'forward' }
  | { readonly kind: 'answer'; readonly wire: Buffer; readonly reason: TruncateReason | LocalAnswerReason }
  | { readonly kind: 'drop'; readonly reason: DropReason; readonly offender?: Offender };

export const FORWARD: Verdict = Object.freeze({ kind: 'forward' });

const dropVerdicts = new Map<DropReason, Verdict>();
export function drop(reason: DropReason): Verdict {
  let v = dropVerdicts.get(reason);
  if (!v) {
    v = Object.freeze({ kind: 'drop', reason });
    dropVerdicts.set(reason, v);
  }
  return v;
}
