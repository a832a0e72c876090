// Log lines for state changes that an attacker can multiply (a spoofed flood
// puts thousands of victims on the ladder at once): at most `perSecond` lines a
// second; the rest are counted, and the count rides on the next line logged.
// The exact numbers are always in the metrics.

import { LogBudget } from './rate-limited.js';

/** What this needs of a pino logger; tests pass a fake. */
interface InfoSink {
  info(obj: object, msg: string): void;
}

export class CappedLog {
  private readonly budget: LogBudget;

  constructor(
    private readonly sink: InfoSink,
    perSecond: number,
    clock: () => number = Date.now,
  ) {
    this.budget = new LogBudget(perSecond, 1000, clock);
  }

  info(obj: Record<string, unknown>, msg: string): void {
    const suppressed = this.budget.take();
    if (suppressed === null) return;
    this.sink.info(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}
