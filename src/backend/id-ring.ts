// DNS message IDs for queries we send upstream: 16 bits, never the same for
// two outstanding queries of one socket (UDP, inflight.ts) or one connection
// (TCP, tcp-forwarder.ts), so a reply is matched to its query by ID alone.
// Free IDs wait in a first-in first-out ring: a released ID goes behind every
// other free one, so the late reply to a query that timed out finds no new
// query under its ID for as long as the ID space allows. IDs are first handed
// out shuffled where they should be unpredictable (UDP, as resolvers do: the
// ring starts full, in random order), else 0, 1, 2... (TCP: counted, and the
// ring grows only as IDs come back, so a short-lived connection costs 8 KiB,
// the bitmap of held IDs, not the whole ID space). O(1) per take and release.

const IDS = 65_536;

export class IdRing {
  /** IDs handed out and not released, one bit each: a release of an ID not held is refused */
  private readonly held = new Uint32Array(IDS >>> 5);
  private used = 0;
  /** IDs never handed out yet, in order: fresh, fresh + 1, ... 65535 (none when shuffled: then they all start in the ring) */
  private fresh = IDS;
  /** free IDs, first out first: ring[head..head + count), wrapping at ring.length (a power of two) */
  private ring: Uint16Array;
  private head = 0;
  private count = 0;

  /** `capacity`: IDs outstanding at most (1..65536); `random`, when given, shuffles the order of first use. */
  constructor(readonly capacity = IDS, random?: () => number) {
    if (!(capacity >= 1 && capacity <= IDS)) throw new RangeError('capacity must be 1..65536');
    if (random === undefined) {
      // 0, 1, 2... counted, not stored: the ring holds only IDs that came back
      this.fresh = 0;
      this.ring = new Uint16Array(16);
    } else {
      this.ring = shuffled(random);
      this.count = IDS;
    }
  }

  /** IDs outstanding now */
  get size(): number {
    return this.used;
  }

  /** A free ID, now held; -1 when `capacity` IDs are out. */
  take(): number {
    if (this.used >= this.capacity) return -1;
    let id: number;
    if (this.fresh < IDS) {
      id = this.fresh++;
    } else {
      // the free ID waiting longest (there is one, since used < capacity <= IDS)
      id = this.ring[this.head]!;
      this.head = (this.head + 1) & (this.ring.length - 1);
      this.count--;
    }
    this.held[id >>> 5] = this.held[id >>> 5]! | (1 << (id & 31));
    this.used++;
    return id;
  }

  /** Gives `id` back; false, and nothing changes, when it is not held (never taken, released already, or no 16-bit ID at all). */
  release(id: number): boolean {
    if ((id & 0xffff) !== id) return false;
    const word = id >>> 5;
    const bit = 1 << (id & 31);
    if ((this.held[word]! & bit) === 0) return false;
    this.held[word] = this.held[word]! & ~bit;
    this.used--;
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) & (this.ring.length - 1)] = id;
    this.count++;
    return true;
  }

  private grow(): void {
    const bigger = new Uint16Array(this.ring.length * 2);
    for (let i = 0; i < this.count; i++) bigger[i] = this.ring[(this.head + i) & (this.ring.length - 1)]!;
    this.ring = bigger;
    this.head = 0;
  }
}

/** 0..65535 in a random order (Fisher-Yates). */
function shuffled(random: () => number): Uint16Array {
  const ids = new Uint16Array(IDS);
  for (let i = 0; i < IDS; i++) ids[i] = i;
  for (let i = IDS - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
  }
  return ids;
}
