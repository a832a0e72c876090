// What the primary and the workers say to each other over the cluster IPC
// channel. Times travel as durations: each process has its own clock origin.
import type { Offender } from '../policy/verdict.js';
import type { BudgetDeltas } from '../policy/budgets.js';
import type { Config } from '../config/schema.js';
import type { DataplaneSnapshot } from '../metrics/snapshot.js';

export type ToPrimary =
  /** the worker listens for messages and waits for its configuration */
  | { readonly t: 'hello' }
  | { readonly t: 'ready' }
  /**
   * since the last batch: successful budget charges [prefix, cost], the same for
   * aggregate networks (`a`), and answered TCP queries this worker could not match as
   * follow-ups (`f`: [key, question hash, 0 prefix | 1 aggregate]; the worker that truncated
   * the question counts it)
   */
  | { readonly t: 'charges' } & BudgetDeltas
  | { readonly t: 'offender'; readonly o: Offender }
  /** the worker's data-plane numbers, every SNAPSHOT_MS */
  | { readonly t: 'stats'; readonly s: DataplaneSnapshot }
  /** the answer to an `ask` */
  | { readonly t: 'answer'; readonly id: number; readonly data: unknown }
  /** why the worker cannot start (a bind error, say), sent just before it exits */
  | { readonly t: 'failed'; readonly err: string };

export type ToWorker =
  /**
   * the primary's config in effect (a replacement worker gets what the primary
   * runs now, never what the file on disk says) and the resolv.conf text it
   * compiled the backends from
   */
  | { readonly t: 'config'; readonly config: Config; readonly resolvConf: string }
  /** charges and follow-ups of the other workers */
  | { readonly t: 'debits' } & BudgetDeltas
  | { readonly t: 'block'; readonly prefix: string; readonly ttlMs: number }
  | { readonly t: 'unblock'; readonly prefix: string }
  | { readonly t: 'reload'; readonly config: Config }
  /** the worker's top talkers (at most n, n <= 100) */
  | { readonly t: 'ask'; readonly id: number; readonly what: 'top'; readonly n: number };
