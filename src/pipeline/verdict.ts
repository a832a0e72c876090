// What a stage decides about a packet (CONTRIBUTING.md rule 2): the listener acts on it, the
// stages never touch a socket. Constant verdicts are shared to keep the hot path
// free of allocations.

export type DropReason = 'malformed' | 'blocked' | 'rate' | 'backend_timeout' | 'overload';
export type TruncateReason = 'any' | 'size';

/** A prefix that went over its large-response budget (Packet-path step 7). */
export interface Offender {
  readonly address: string;
  readonly prefix: string;
  readonly family: 4 | 6;
  /** bytes (or replies, for a packet rate) charged within the current window when it tripped */
  readonly charged: number;
}

export type Verdict =
  | { readonly kind: 'forward' }
  | { readonly kind: 'answer'; readonly wire: Buffer; readonly reason: TruncateReason }
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
