// What the primary and the workers say to each other over the cluster IPC
// channel. Times travel as durations: each process has its own clock origin.
import type { Offender } from '../pipeline/verdict.js';
import type { Config } from '../config/schema.js';

export type ToPrimary =
  | { readonly t: 'ready' }
  /** successful budget charges since the last batch: [prefix, cost] */
  | { readonly t: 'charges'; readonly d: readonly (readonly [string, number])[] }
  | { readonly t: 'offender'; readonly o: Offender }
  /** the answer to an `ask` */
  | { readonly t: 'answer'; readonly id: number; readonly data: unknown };

export type ToWorker =
  /** charges made by the other workers */
  | { readonly t: 'debits'; readonly d: readonly (readonly [string, number])[] }
  | { readonly t: 'block'; readonly prefix: string; readonly ttlMs: number }
  | { readonly t: 'unblock'; readonly prefix: string }
  | { readonly t: 'reload'; readonly config: Config }
  /** the worker's registry as JSON, or its top talkers */
  | { readonly t: 'ask'; readonly id: number; readonly what: 'metrics' }
  | { readonly t: 'ask'; readonly id: number; readonly what: 'top'; readonly n: number };
