// The one budget for log lines that can repeat at packet rate or that an
// attacker can multiply: at most `perWindow` lines per window of `windowMs`;
// the rest are only counted, and the count rides on the next line logged, so
// nothing is lost from the tally (the exact numbers are in the metrics).
// OncePerSecond (faults), CappedLog (state changes) and the sockets' error
// lines all spend from one of these.

export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** lines counted but not logged since the last line */
  get pending(): number {
    return this.suppressed;
  }

  /** null when this line is over the budget (it is counted); otherwise the lines held back since the last one */
  take(): number | null {
    const now = this.clock();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed++;
      return null;
    }
    this.used++;
    const held = this.suppressed;
    this.suppressed = 0;
    return held;
  }
}
