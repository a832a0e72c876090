// Log lines for state changes that an attacker can multiply (a spoofed flood
// puts thousands of victims on the ladder at once): at most `perSecond` lines a
// second; the rest are counted, and the count rides on the next line logged.
// The exact numbers are always in the metrics.

/** What this needs of a pino logger; tests pass a fake. */
export interface InfoSink {
  info(obj: object, msg: string): void;
}

export class CappedLog {
  private second = -1;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly sink: InfoSink,
    private readonly perSecond: number,
    private readonly clock: () => number = Date.now,
  ) {}

  info(obj: Record<string, unknown>, msg: string): void {
    const second = Math.floor(this.clock() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.used = 0;
    }
    if (this.used >= this.perSecond) {
      this.suppressed++;
      return;
    }
    this.used++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.sink.info(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}
