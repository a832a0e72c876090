// Outstanding UDP queries of one backend socket, keyed by the fresh ID we sent.
// IDs come from a free list, so two outstanding queries never share one, and
// the table can never hold more than `capacity` (<= 65536) entries (CONTRIBUTING.md rule 12).
// Time is a parameter; the I/O layer calls sweep() on a timer.

export class InFlightTable<T> {
  private readonly entries: (T | undefined)[];
  private readonly deadlines: Float64Array;
  private readonly free: Uint16Array;
  private freeHead = 0;
  private freeCount: number;
  private used = 0;

  constructor(readonly capacity: number, random: () => number = Math.random) {
    if (capacity < 1 || capacity > 65536) throw new RangeError('capacity must be 1..65536');
    this.entries = new Array<T | undefined>(65536);
    this.deadlines = new Float64Array(65536);
    // A shuffled pool of all 65536 IDs, of which at most `capacity` are out at once:
    // IDs stay unpredictable and a just-released ID is not reused at once.
    const ids = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) ids[i] = i;
    for (let i = 65535; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = ids[i]!;
      ids[i] = ids[j]!;
      ids[j] = t;
    }
    this.free = ids;
    this.freeCount = 65536;
  }

  get size(): number {
    return this.used;
  }

  /** Stores `entry` until `deadline`; returns its ID, or -1 when the table is full. */
  add(entry: T, deadline: number): number {
    if (this.used >= this.capacity) return -1;
    const id = this.free[this.freeHead]!;
    this.freeHead = (this.freeHead + 1) & 0xffff;
    this.freeCount--;
    this.entries[id] = entry;
    this.deadlines[id] = deadline;
    this.used++;
    return id;
  }

  peek(id: number): T | undefined {
    return this.entries[id];
  }

  /** Removes and returns the entry for `id`, if one is outstanding. */
  take(id: number): T | undefined {
    const entry = this.entries[id];
    if (entry === undefined) return undefined;
    this.release(id);
    return entry;
  }

  /** Removes every entry whose deadline is at or before `now`, handing each to `onExpired`. */
  sweep(now: number, onExpired: (entry: T) => void): void {
    if (this.used === 0) return;
    for (let id = 0; id < 65536; id++) {
      const entry = this.entries[id];
      if (entry !== undefined && this.deadlines[id]! <= now) {
        this.release(id);
        onExpired(entry);
      }
    }
  }

  private release(id: number): void {
    this.entries[id] = undefined;
    this.free[(this.freeHead + this.freeCount) & 0xffff] = id;
    this.freeCount++;
    this.used--;
  }
}
