// Queries waiting for an upstream TCP slot (src/backend/tcp-pool.ts), served
// round-robin by client prefix: each prefix's queries in their order, the
// prefixes in turn, so a prefix with many waiting queries delays another
// prefix's query by at most one slot per waiting prefix, not by its whole
// backlog. Pure: no timers, no sockets. Bounded by what feeds it: a prefix
// has at most tcp.max_in_flight_per_client queries handed to the pool
// (src/pipeline/client-shares.ts), waiting ones included.
export class FairQueue<T> {
  /** insertion order of the map is the turn order: a prefix just served goes to the back */
  private readonly byKey = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** prefixes with a query waiting */
  get keys(): number {
    return this.byKey.size;
  }

  push(key: string, item: T): void {
    const list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, [item]);
    else list.push(item);
    this.count++;
  }

  /** takes `item` out (it expired or was cancelled); false when it was not waiting */
  remove(key: string, item: T): boolean {
    const list = this.byKey.get(key);
    if (list === undefined) return false;
    const i = list.indexOf(item);
    if (i < 0) return false;
    list.splice(i, 1);
    this.count--;
    if (list.length === 0) this.byKey.delete(key);
    return true;
  }

  /** the head of each prefix, in turn order (a snapshot: take() may be called while walking it) */
  heads(): [string, T][] {
    const out: [string, T][] = [];
    for (const [key, list] of this.byKey) out.push([key, list[0]!]);
    return out;
  }

  /** removes the head of `key`'s queue and sends `key` to the back of the turn */
  take(key: string): T | undefined {
    const list = this.byKey.get(key);
    if (list === undefined) return undefined;
    const item = list.shift();
    this.count--;
    this.byKey.delete(key);
    if (list.length > 0) this.byKey.set(key, list);
    return item;
  }
}
