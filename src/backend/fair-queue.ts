// Queries waiting for an upstream TCP slot (src/backend/tcp-forwarder.ts), served
// round-robin by client prefix: each prefix's queries in their order, the
// prefixes in turn, so a prefix with many waiting queries delays another
// prefix's query by at most one slot per waiting prefix, not by its whole
// backlog. Pure: no timers, no sockets. Bounded by what feeds it: a prefix
// has at most tcp.max_in_flight_per_client queries handed to the pool
// (src/pipeline/client-shares.ts), waiting ones included.
/** a place in the queue, for removing it in O(1) */
export interface QueueSlot<T> {
  readonly item: T;
  readonly key: string;
}

interface Node<T> extends QueueSlot<T> {
  prev: Node<T> | null;
  next: Node<T> | null;
  list: List<T> | null;
}

interface List<T> {
  head: Node<T> | null;
  tail: Node<T> | null;
}

export class FairQueue<T> {
  /** insertion order of the map is the turn order: a prefix just served goes to the back */
  private readonly byKey = new Map<string, List<T>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** prefixes with a query waiting */
  get keys(): number {
    return this.byKey.size;
  }

  push(key: string, item: T): QueueSlot<T> {
    let list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, (list = { head: null, tail: null }));
    const node: Node<T> = { item, key, prev: list.tail, next: null, list };
    if (list.tail !== null) list.tail.next = node;
    else list.head = node;
    list.tail = node;
    this.count++;
    return node;
  }

  /** takes a waiting item out (it expired or was cancelled), in O(1); false when it was not waiting */
  remove(slot: QueueSlot<T>): boolean {
    const node = slot as Node<T>;
    const list = node.list;
    if (list === null) return false;
    this.unlink(node, list);
    if (list.head === null) this.byKey.delete(node.key);
    return true;
  }

  /** the head of each prefix, in turn order (a snapshot: take() may be called while walking it) */
  heads(): [string, T][] {
    const out: [string, T][] = [];
    for (const [key, list] of this.byKey) out.push([key, list.head!.item]);
    return out;
  }

  /** removes the head of `key`'s queue and sends `key` to the back of the turn */
  take(key: string): T | undefined {
    const list = this.byKey.get(key);
    if (list === undefined || list.head === null) return undefined;
    const node = list.head;
    this.unlink(node, list);
    this.byKey.delete(key);
    if (list.head !== null) this.byKey.set(key, list);
    return node.item;
  }

  private unlink(node: Node<T>, list: List<T>): void {
    if (node.prev !== null) node.prev.next = node.next;
    else list.head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else list.tail = node.prev;
    node.prev = node.next = null;
    node.list = null;
    this.count--;
  }
}
