// What the operator's pages and APIs read, whether one process serves DNS or
// a cluster primary speaks for its workers.
import type { Enforcer } from '../enforce/enforcer.js';
import type { TopTalker } from '../policy/budgets.js';
import type { MetricJson } from './stats.js';

export interface OperatorView {
  readonly enforcer: Enforcer;
  /** the top talkers by large-reply bytes in the last minute */
  top(n: number): Promise<TopTalker[]>;
  /** the registry as JSON (aggregated over workers in cluster mode) */
  metricsJson(): Promise<MetricJson[]>;
}

/** Adds up per-worker top lists by prefix and keeps the `n` largest. */
export function mergeTop(lists: readonly (readonly TopTalker[])[], n: number): TopTalker[] {
  const sum = new Map<string, number>();
  for (const list of lists) for (const t of list) sum.set(t.prefix, (sum.get(t.prefix) ?? 0) + t.bytes);
  return [...sum].map(([prefix, bytes]) => ({ prefix, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, n);
}
