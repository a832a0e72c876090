// IPv4 and IPv6 fragments put back together, so that a fragmented query or
// answer counts once, whole, at the time its last fragment arrived (the time
// the receiving host would have handed it to the DNS software). Large answers
// are exactly the ones that get fragmented: skipping fragments would make the
// amplification figure lowest where it matters (docs/replay.md).
//
// What is missing of a datagram is kept as RFC 815's hole list. What a Linux
// receiver would drop is dropped (RFC 5722 and its erratum 3089, which Linux
// applies to IPv4 too): a fragment overlapping one already received discards
// the whole datagram; an exact duplicate is ignored. Incomplete datagrams time
// out on the capture's clock (30 s for IPv4, 60 s for IPv6, as Linux's
// ipfrag_time and ip6frag_time), and the table is bounded in datagrams and in
// bytes: the oldest goes first. Every fragment ends in one outcome, counted.

/** what happened to fragments and datagrams; the report shows it (docs/replay.md) */
export interface ReassemblyStats {
  /** fragments read */
  fragments: number;
  /** whole datagrams made from them */
  reassembled: number;
  /** fragments identical in place and length to one already held: ignored */
  duplicate: number;
  /** datagrams discarded for a fragment overlapping another, or a second, different end */
  overlap: number;
  /** datagrams still incomplete 30 s (IPv6: 60 s) after their first fragment */
  timeout: number;
  /** incomplete datagrams dropped to keep the table within its bounds */
  evicted: number;
  /** fragments no receiver accepts: past 65,535 bytes, a non-final one not a multiple of 8 bytes, or no room for its header */
  invalid: number;
  /** datagrams still missing fragments when the capture ended */
  incomplete: number;
}

function newReassemblyStats(): ReassemblyStats {
  return { fragments: 0, reassembled: 0, duplicate: 0, overlap: 0, timeout: 0, evicted: 0, invalid: 0, incomplete: 0 };
}

/** One fragment as the decoder found it (packet.ts fills these fields of Decoded). */
export interface FragmentView {
  readonly frame: Buffer;
  readonly family: 4 | 6;
  /** where the IPv4 header starts, and its length; for IPv6 the fixed header (40 bytes) */
  readonly fragHeaderAt: number;
  readonly fragHeaderLen: number;
  /** IPv4 identification (16 bits) or IPv6 fragment identification (32 bits) */
  readonly fragId: number;
  /** byte offset of this fragment's data in the datagram */
  readonly fragOffset: number;
  readonly fragMore: boolean;
  /** the protocol (IPv4) or next header (IPv6) of the fragmented payload */
  readonly fragNext: number;
  /** the fragment's data: [fragDataAt, fragCapEnd) captured of [fragDataAt, fragWireEnd) on the wire */
  readonly fragDataAt: number;
  readonly fragCapEnd: number;
  readonly fragWireEnd: number;
  /** where the source address starts (the destination follows it) */
  readonly fragAddrAt: number;
}

interface Hole {
  first: number;
  /** inclusive; Infinity until the last fragment says where the datagram ends */
  last: number;
}

interface Partial {
  readonly family: 4 | 6;
  readonly firstAt: number;
  /** the header to put in front of the whole datagram, from the first fragment (offset 0) */
  header: Buffer | null;
  next: number;
  data: Buffer;
  holes: Hole[];
  /** fragments held: start -> [end on the wire, end captured] */
  readonly held: Map<number, [number, number]>;
  /** the datagram's length, once its last fragment came */
  total: number;
}

const MAX_DATAGRAM = 65_535;
/**
 * Fragments one datagram may have. A 64 KiB datagram over the smallest IPv6
 * MTU (1280) is 52; 8-byte fragments would make 8,192, each a hole to search
 * and an entry to hold, so a crafted capture could make the work per datagram
 * quadratic and the memory many times the data's. Past this, the datagram is
 * dropped as invalid.
 */
const MAX_FRAGMENTS = 256;
/** what holding one fragment costs besides its bytes (its entry in `held`, a hole), charged against maxBytes */
const FRAGMENT_COST = 128;
const TIMEOUT_V4_MS = 30_000;
const TIMEOUT_V6_MS = 60_000;

/** A whole datagram: a raw IP packet, its captured bytes ending at `stop` (snaplen may have cut a fragment). */
interface Whole {
  readonly packet: Buffer;
  readonly stop: number;
}

export class Reassembler {
  readonly stats = newReassemblyStats();
  /** by family, each in order of first arrival, so the oldest of each times out first */
  private readonly v4 = new Map<string, Partial>();
  private readonly v6 = new Map<string, Partial>();
  private bytes = 0;

  constructor(
    private readonly maxDatagrams = 16_384,
    private readonly maxBytes = 64 << 20,
  ) {}

  /** incomplete datagrams held */
  get size(): number {
    return this.v4.size + this.v6.size;
  }

  /** A fragment at capture time `now`: the whole datagram when this one completes it, else null. */
  add(f: FragmentView, now: number): Whole | null {
    const st = this.stats;
    st.fragments++;
    this.expire(now);
    const start = f.fragOffset;
    const end = start + (f.fragWireEnd - f.fragDataAt);
    const headerLen = f.family === 4 ? f.fragHeaderLen : 40;
    if (end > MAX_DATAGRAM || (f.family === 4 && headerLen + end > MAX_DATAGRAM) || (f.fragMore && (end - start) % 8 !== 0) || end <= start) {
      st.invalid++;
      return null;
    }
    const d = f.frame;
    const key = `${f.family}|${d.toString('latin1', f.fragAddrAt, f.fragAddrAt + (f.family === 4 ? 8 : 32))}|${f.family === 4 ? f.fragNext : 0}|${f.fragId}`;
    const table = f.family === 4 ? this.v4 : this.v6;
    let p = table.get(key);
    if (p === undefined) {
      while (this.size >= this.maxDatagrams) this.evictOldest();
      p = { family: f.family, firstAt: now, header: null, next: f.fragNext, data: Buffer.alloc(0), holes: [{ first: 0, last: Infinity }], held: new Map(), total: -1 };
      table.set(key, p);
    }
    const held = p.held.get(start);
    if (held !== undefined && held[0] === end) {
      st.duplicate++;
      return null;
    }
    if (p.held.size >= MAX_FRAGMENTS) {
      st.invalid++;
      this.drop(key, p);
      return null;
    }
    // RFC 815: the fragment must fill part of one hole and nothing else (RFC 5722: else the datagram goes)
    const last = end - 1;
    let i = 0;
    const holes = p.holes;
    while (i < holes.length && !(start >= holes[i]!.first && last <= holes[i]!.last)) i++;
    if (i === holes.length || (!f.fragMore && p.total >= 0) || (p.total >= 0 && end > p.total)) {
      st.overlap++;
      this.drop(key, p);
      return null;
    }
    const hole = holes[i]!;
    const replace: Hole[] = [];
    if (start > hole.first) replace.push({ first: hole.first, last: start - 1 });
    if (f.fragMore) {
      if (last < hole.last) replace.push({ first: end, last: hole.last });
    } else {
      // the last fragment: nothing beyond it, and no hole may reach past it
      if (hole.last !== Infinity) {
        st.overlap++;
        this.drop(key, p);
        return null;
      }
      p.total = end;
    }
    holes.splice(i, 1, ...replace);
    p.held.set(start, [end, start + (f.fragCapEnd - f.fragDataAt)]);
    this.bytes += FRAGMENT_COST;
    this.store(p, start, d, f.fragDataAt, f.fragCapEnd);
    if (start === 0) {
      p.header = Buffer.from(d.subarray(f.fragHeaderAt, f.fragHeaderAt + headerLen));
      p.next = f.fragNext;
    }
    if (this.bytes > this.maxBytes) {
      while (this.bytes > this.maxBytes && this.size > 0) this.evictOldest();
      if (!table.has(key)) return null;
    }
    if (holes.length > 0) return null;
    this.drop(key, p);
    st.reassembled++;
    return this.whole(p);
  }

  /** At the end of the capture: what is still missing fragments is counted, after the timeouts due by `now`. */
  finish(now: number): void {
    this.expire(now);
    this.stats.incomplete += this.size;
    this.v4.clear();
    this.v6.clear();
    this.bytes = 0;
  }

  private whole(p: Partial): Whole {
    const h = p.header!;
    const packet = Buffer.alloc(h.length + p.total);
    h.copy(packet, 0);
    p.data.copy(packet, h.length, 0, p.total);
    if (p.family === 4) {
      packet[2] = (h.length + p.total) >> 8;
      packet[3] = (h.length + p.total) & 255;
      packet[6] = 0;
      packet[7] = 0;
    } else {
      packet[4] = p.total >> 8;
      packet[5] = p.total & 255;
      packet[6] = p.next;
    }
    // bytes a snaplen cut from a fragment are zeros here: only what precedes the first cut was captured
    let captured = 0;
    for (const [s, [wireEnd, capEnd]] of [...p.held].sort((a, b) => a[0] - b[0])) {
      if (s > captured) break;
      captured = Math.max(captured, capEnd);
      if (capEnd < wireEnd) break;
    }
    return { packet, stop: h.length + captured };
  }

  private store(p: Partial, start: number, from: Buffer, at: number, capEnd: number): void {
    const need = start + (capEnd - at);
    if (need > p.data.length) {
      const size = Math.min(MAX_DATAGRAM, Math.max(need, 2 * p.data.length, 2048));
      const grown = Buffer.alloc(size);
      p.data.copy(grown);
      this.bytes += size - p.data.length;
      p.data = grown;
    }
    from.copy(p.data, start, at, capEnd);
  }

  private expire(now: number): void {
    for (const [table, timeout] of [[this.v4, TIMEOUT_V4_MS], [this.v6, TIMEOUT_V6_MS]] as const) {
      for (const [key, p] of table) {
        if (now - p.firstAt < timeout) break;
        this.stats.timeout++;
        this.drop(key, p);
      }
    }
  }

  /** the older of the two tables' oldest */
  private evictOldest(): void {
    const a = this.v4.entries().next().value as [string, Partial] | undefined;
    const b = this.v6.entries().next().value as [string, Partial] | undefined;
    const [key, p] = a === undefined || (b !== undefined && b[1].firstAt < a[1].firstAt) ? b! : a;
    this.stats.evicted++;
    this.drop(key, p);
  }

  private drop(key: string, p: Partial): void {
    (p.family === 4 ? this.v4 : this.v6).delete(key);
    this.bytes -= p.data.length + p.held.size * FRAGMENT_COST;
  }
}
