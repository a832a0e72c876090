// A monotonic clock whose timers fire only when a unit test moves it: what
// the kernel queue (QueueTimers) and a TCP connection (ConnectionTimers) take
// in place of setTimeout/clearTimeout.

export class FakeTimers {
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;

  constructor(public now = 0) {}

  set(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  }

  clear(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** timers set and not yet fired or cleared */
  get pending(): number {
    return this.timers.length;
  }

  /** ms until the next timer, or null */
  nextIn(): number | null {
    if (this.timers.length === 0) return null;
    return Math.min(...this.timers.map((t) => t.at)) - this.now;
  }

  /** Moves time forward, firing each timer due, earliest first. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let due = this.take(end); due; due = this.take(end)) due.fn();
    this.now = end;
  }

  /** advance(), letting the promises each timer starts settle before the next fires */
  async advanceSettled(ms: number): Promise<void> {
    const end = this.now + ms;
    for (let due = this.take(end); due; due = this.take(end)) {
      due.fn();
      for (let i = 0; i < 20; i++) await Promise.resolve();
    }
    this.now = end;
  }

  /** the earliest timer due by `end`, removed, with the clock moved to it */
  private take(end: number): { fn: () => void } | undefined {
    const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
    if (!due) return undefined;
    this.timers = this.timers.filter((t) => t !== due);
    this.now = due.at;
    return due;
  }
}
