// Outstanding UDP queries of one backend socket, keyed by the fresh ID we sent.
// IDs come from an IdRing (id-ring.ts), shuffled, so two outstanding queries
// never share one, IDs stay unpredictable and a just-released ID is not reused
// at once; the table can never hold more than `capacity` (<= 65536) entries
// (CONTRIBUTING.md rule 12). Time is a parameter; the I/O layer calls sweep()
// on a timer.
import { IdRing } from './id-ring.js';

export class InFlightTable<T> {
  private readonly entries: (T | undefined)[];
  private readonly deadlines: Float64Array;
  private readonly ids: IdRing;

  /** `capacity`: entries at most, 1..65536 */
  constructor(capacity: number, random: () => number = Math.random) {
    this.ids = new IdRing(capacity, random);
    this.entries = new Array<T | undefined>(65536);
    this.deadlines = new Float64Array(65536);
  }

  get size(): number {
    return this.ids.size;
  }

  /** Stores `entry` until `deadline`; returns its ID, or -1 when the table is full. */
  add(entry: T, deadline: number): number {
    const id = this.ids.take();
    if (id < 0) return -1;
    this.entries[id] = entry;
    this.deadlines[id] = deadline;
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
    if (this.ids.size === 0) return;
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
    this.ids.release(id);
  }
}
