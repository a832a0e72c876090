// Logging for faults that can repeat at packet rate. The first fault of each
// second is logged with its message; the ones after it in that second are only
// counted, and the count rides on the next line that is logged. So one hostile
// input repeated a million times costs a line a second, not a million lines,
// and nothing is lost from the tally (the exact count is in the metrics).

import { LogBudget } from './rate-limited.js';

/** What this needs of a pino logger; tests pass a fake. */
export interface ErrorSink {
  error(obj: object, msg: string): void;
}

const LOG_INTERVAL_MS = 1000;

export class OncePerSecond {
  private readonly budget: LogBudget;

  constructor(
    private readonly sink: ErrorSink,
    private readonly msg: string,
    clock: () => number = Date.now,
  ) {
    this.budget = new LogBudget(1, LOG_INTERVAL_MS, clock);
  }

  /** errors counted but not logged since the last line */
  get pending(): number {
    return this.budget.pending;
  }

  report(unit: string, err: unknown): void {
    const suppressed = this.budget.take();
    if (suppressed === null) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.sink.error({ unit, err: e.message, code: (e as { code?: unknown }).code, stack: e.stack, suppressed }, this.msg);
  }
}
