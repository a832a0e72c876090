// Each client prefix's share of the queries in flight upstream over TCP
// (tcp.max_in_flight_per_client, this process's share of it): counted per
// budget prefix (/32, /64 by default) over all its connections, so a few
// prefixes pipelining slow queries cannot take every upstream slot
// (docs/tcp.md). A prefix at its share is not refused: its connections stop
// handing out queries (their messages wait, framed, and reading pauses) and are
// woken when one of its queries ends. Pure: no sockets, no timers.
export class ClientShares {
  private readonly inFlight = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(readonly limit: number) {}

  /** prefixes with a query in flight now (the table's size: at most one per open client connection) */
  get tracked(): number {
    return this.inFlight.size;
  }

  inFlightOf(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  /** whether `key` may have one more query in flight */
  room(key: string): boolean {
    return (this.inFlight.get(key) ?? 0) < this.limit;
  }

  take(key: string): void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
  }

  /** one of `key`'s queries ended: its connections that waited for room are woken (each takes room or waits again) */
  give(key: string): void {
    const n = (this.inFlight.get(key) ?? 1) - 1;
    if (n <= 0) this.inFlight.delete(key);
    else this.inFlight.set(key, n);
    const waiting = this.waiters.get(key);
    if (waiting === undefined) return;
    this.waiters.delete(key);
    for (const wake of waiting) wake();
  }

  /** calls `wake` once, at the next give(key) */
  wait(key: string, wake: () => void): void {
    let set = this.waiters.get(key);
    if (set === undefined) this.waiters.set(key, (set = new Set()));
    set.add(wake);
  }

  /** a connection that went away waits no more */
  unwait(key: string, wake: () => void): void {
    const set = this.waiters.get(key);
    if (set === undefined) return;
    set.delete(wake);
    if (set.size === 0) this.waiters.delete(key);
  }
}
