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

/**
 * Adds up per-worker top lists by prefix and keeps the `n` largest; a prefix's
 * rung is the highest any worker has it on (each keeps its own ladder).
 */
export function mergeTop(lists: readonly (readonly TopTalker[])[], n: number): TopTalker[] {
  const sum = new Map<string, { bytes: number; rung?: number }>();
  for (const list of lists) {
    for (const t of list) {
      const seen = sum.get(t.prefix);
      const rung = Math.max(seen?.rung ?? 0, t.rung ?? 0) || undefined;
      sum.set(t.prefix, { bytes: (seen?.bytes ?? 0) + t.bytes, ...(rung !== undefined ? { rung } : {}) });
    }
  }
  return [...sum].map(([prefix, v]) => ({ prefix, ...v })).sort((a, b) => b.bytes - a.bytes).slice(0, n);
}
