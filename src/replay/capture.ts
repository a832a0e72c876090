// Reads packet captures as tcpdump -w writes them: classic pcap (microsecond
// and nanosecond, either byte order) and pcapng (several sections, several
// interfaces, each with its own link type and timestamp resolution). The file
// is streamed through one buffer, so memory stays the size of the buffer (and
// of the largest record), never of the capture (docs/replay.md). Anything that
// does not add up (a truncated record, a length past the end, a bad magic) is
// a CaptureError naming the byte offset where it was found, never a crash.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export class CaptureError extends Error {
  constructor(
    readonly file: string,
    /** byte offset in the file of the record or block that is broken */
    readonly offset: number,
    what: string,
  ) {
    super(`${file}: ${what} at byte offset ${offset}`);
  }
}

/** One captured frame; the reader reuses this object and its buffer for the next one. */
export class Frame {
  /** capture time, ms since the epoch (fractional) */
  ts = 0;
  linkType = 0;
  /** the reader's buffer; the frame is bytes [start, end) of it, valid until the next call */
  buffer: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  /** the length the packet had on the wire (the frame may be shorter: snaplen) */
  origLen = 0;
  /** byte offset of the record in the file */
  offset = 0;

  /** the captured bytes (a view: the decoder reads the buffer by offsets and needs no view) */
  get data(): Buffer {
    return this.buffer.subarray(this.start, this.end);
  }
}

// fields are read byte by byte, which V8 inlines, unlike Buffer's readers (docs/replay.md, speed)
function le32(b: Buffer, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function be32(b: Buffer, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

const CHUNK = 4 << 20;
/** no record of a sane capture is larger (tcpdump's snaplen is at most 256 KiB) */
const MAX_RECORD = 16 << 20;

/** the latest time a Date can hold (ECMA-262 21.4.1.22): a timestamp past it is corrupt, year 275760 */
const MAX_TIME_MS = 8.64e15;

const PCAP_US = 0xa1b2c3d4;
const PCAP_NS = 0xa1b23c4d;
const NG_SHB = 0x0a0d0d0a;
const NG_BYTE_ORDER = 0x1a2b3c4d;

interface NgInterface {
  linkType: number;
  /** timestamp units per second */
  unitsPerSec: number;
  /** seconds added to every timestamp (if_tsoffset) */
  offsetSec: number;
}

export class CaptureReader {
  private fd: number;
  private buf = Buffer.allocUnsafe(CHUNK);
  /** file offset of buf[0] */
  private base = 0;
  private start = 0;
  private end = 0;
  private eof = false;
  readonly size: number;
  private format: 'pcap' | 'pcapng' | null = null;
  private little = true;
  private nanos = false;
  private pcapLinkType = 0;
  private interfaces: NgInterface[] = [];
  private lastTs = 0;
  private readonly frame = new Frame();

  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    this.size = fstatSync(this.fd).size;
  }

  /** bytes of the file consumed so far */
  get position(): number {
    return this.base + this.start;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** The next frame, or null at the end of the file. Throws CaptureError on a broken file. */
  next(): Frame | null {
    if (this.format === null) this.readFileHeader();
    return this.format === 'pcap' ? this.nextPcap() : this.nextPcapng();
  }

  /** Makes `n` bytes available from `start`; false when the file ends first. */
  private fill(n: number): boolean {
    if (this.end - this.start >= n) return true;
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(bigger, 0, this.start, this.end);
      this.buf = bigger;
    } else if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.base += this.start;
    this.end -= this.start;
    this.start = 0;
    while (this.end < n && !this.eof) {
      const got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.base + this.end);
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return this.end - this.start >= n;
  }

  private u32(at: number): number {
    return this.little ? le32(this.buf, at) : be32(this.buf, at);
  }

  private u16(at: number): number {
    const b = this.buf;
    return this.little ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
  }

  private fail(offset: number, what: string): never {
    throw new CaptureError(this.file, offset, what);
  }

  private readFileHeader(): void {
    if (!this.fill(4)) this.fail(0, this.size === 0 ? 'empty file, not a capture' : 'file too short for a capture header');
    const le = this.buf.readUInt32LE(0);
    const be = this.buf.readUInt32BE(0);
    if (le === NG_SHB) {
      this.format = 'pcapng';
      return; // the section header block is read as the first block
    }
    for (const [magic, little] of [[le, true], [be, false]] as const) {
      if (magic === PCAP_US || magic === PCAP_NS) {
        this.format = 'pcap';
        this.little = little;
        this.nanos = magic === PCAP_NS;
      }
    }
    if (this.format === null) this.fail(0, `unknown magic 0x${be.toString(16).padStart(8, '0')}: not a pcap or pcapng file`);
    if (!this.fill(24)) this.fail(0, 'truncated pcap file header');
    if (this.u16(4) !== 2) this.fail(0, `pcap version ${this.u16(4)}.${this.u16(6)}, expected 2.x`);
    // the upper bits of the link type field may carry an FCS length (pcap-linktype(7))
    this.pcapLinkType = this.u32(20) & 0x03ffffff;
    this.start += 24;
  }

  private nextPcap(): Frame | null {
    const at = this.position;
    if (!this.fill(16)) {
      if (this.end === this.start) return null;
      this.fail(at, `truncated record header (${this.end - this.start} of 16 bytes)`);
    }
    const s = this.start;
    const b = this.buf;
    const little = this.little;
    const sec = little ? le32(b, s) : be32(b, s);
    const frac = little ? le32(b, s + 4) : be32(b, s + 4);
    const capLen = little ? le32(b, s + 8) : be32(b, s + 8);
    const origLen = little ? le32(b, s + 12) : be32(b, s + 12);
    if (capLen > MAX_RECORD) this.fail(at, `corrupt record: captured length ${capLen}`);
    // a fraction of a second of a second or more: libpcap never writes one, so the record header is corrupt
    if (frac >= (this.nanos ? 1e9 : 1e6)) this.fail(at, `corrupt record: timestamp fraction ${frac} ${this.nanos ? 'ns' : 'us'}`);
    if (!this.fill(16 + capLen)) this.fail(at, `truncated record (${this.end - this.start - 16} of ${capLen} bytes)`);
    const f = this.frame;
    f.ts = sec * 1000 + (this.nanos ? frac / 1e6 : frac / 1e3);
    f.linkType = this.pcapLinkType;
    f.buffer = this.buf;
    f.start = this.start + 16;
    f.end = this.start + 16 + capLen;
    f.origLen = origLen;
    f.offset = at;
    this.start += 16 + capLen;
    return f;
  }

  private nextPcapng(): Frame | null {
    for (;;) {
      const at = this.position;
      if (!this.fill(12)) {
        if (this.end === this.start) return null;
        this.fail(at, `truncated block header (${this.end - this.start} bytes)`);
      }
      const s = this.start;
      let type = this.buf.readUInt32LE(s);
      if (type === NG_SHB) {
        // each section says its own byte order
        const bom = this.buf.readUInt32LE(s + 8);
        if (bom === NG_BYTE_ORDER) this.little = true;
        else if (this.buf.readUInt32BE(s + 8) === NG_BYTE_ORDER) this.little = false;
        else this.fail(at, 'section header block with an unknown byte-order magic');
        this.interfaces = [];
        if (this.u32(s + 4) < 28) this.fail(at, `corrupt section header block: length ${this.u32(s + 4)}`);
      } else {
        type = this.u32(s);
      }
      const len = this.u32(s + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_RECORD) this.fail(at, `corrupt block: length ${len}`);
      if (!this.fill(len)) this.fail(at, `truncated block (${this.end - this.start} of ${len} bytes)`);
      const b = this.start;
      if (this.u32(b + len - 4) !== len) this.fail(at, 'corrupt block: trailing length differs');
      this.start += len;
      const body = b + 8;
      const bodyEnd = b + len - 4;
      if (type === 1) {
        this.interfaces.push(this.readInterface(body, bodyEnd, at));
        continue;
      }
      if (type !== 6 && type !== 3 && type !== 2) continue; // SHB, stats, name resolution, custom...
      const f = this.frame;
      f.offset = at;
      let dataAt: number;
      let capLen: number;
      let iface: NgInterface | undefined;
      if (type === 3) {
        // simple packet block: interface 0, no timestamp
        iface = this.interfaces[0];
        if (bodyEnd - body < 4) this.fail(at, 'simple packet block too short');
        f.origLen = this.u32(body);
        dataAt = body + 4;
        capLen = Math.min(f.origLen, bodyEnd - dataAt);
        f.ts = this.lastTs;
      } else {
        if (bodyEnd - body < 20) this.fail(at, 'packet block too short');
        const id = type === 6 ? this.u32(body) : this.u16(body);
        iface = this.interfaces[id];
        if (iface === undefined) this.fail(at, `packet of interface ${id}, which no interface block described`);
        const units = this.u32(body + 4) * 4294967296 + this.u32(body + 8);
        f.ts = (units / iface.unitsPerSec + iface.offsetSec) * 1000;
        // a high word of 0xffffffff, or microseconds read as seconds (if_tsresol 0): no clock reads that
        if (!(Math.abs(f.ts) <= MAX_TIME_MS)) {
          this.fail(at, `corrupt packet block: timestamp ${units} at ${iface.unitsPerSec} units/s is past the year 275760`);
        }
        capLen = this.u32(body + 12);
        f.origLen = this.u32(body + 16);
        dataAt = body + 20;
        if (dataAt + capLen > bodyEnd) this.fail(at, `corrupt packet block: captured length ${capLen} past the block's end`);
      }
      if (iface === undefined) this.fail(at, 'packet before any interface block');
      this.lastTs = f.ts;
      f.linkType = iface.linkType;
      f.buffer = this.buf;
      f.start = dataAt;
      f.end = dataAt + capLen;
      return f;
    }
  }

  private readInterface(body: number, bodyEnd: number, at: number): NgInterface {
    if (bodyEnd - body < 8) this.fail(at, 'interface block too short');
    const iface: NgInterface = { linkType: this.u16(body), unitsPerSec: 1e6, offsetSec: 0 };
    let o = body + 8;
    while (o + 4 <= bodyEnd) {
      const code = this.u16(o);
      const olen = this.u16(o + 2);
      if (code === 0) break;
      if (o + 4 + olen > bodyEnd) this.fail(at, 'interface block option runs past the block');
      if (code === 9) {
        if (olen !== 1) this.fail(at, `interface block option if_tsresol of ${olen} bytes, expected 1`);
        const v = this.buf[o + 4]!;
        // units per second must fit the 64-bit timestamp: 10^19 or 2^63 at most (pcapng 4.2)
        if (v & 0x80 ? (v & 0x7f) > 63 : v > 19) this.fail(at, `interface block option if_tsresol 0x${v.toString(16)} out of range`);
        iface.unitsPerSec = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
      } else if (code === 14) {
        if (olen !== 8) this.fail(at, `interface block option if_tsoffset of ${olen} bytes, expected 8`);
        // signed seconds (pcapng 4.2)
        const first = this.u32(o + 4);
        const second = this.u32(o + 8);
        const hi = this.little ? second : first;
        const lo = this.little ? first : second;
        iface.offsetSec = (hi | 0) * 4294967296 + lo;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    return iface;
  }
}
