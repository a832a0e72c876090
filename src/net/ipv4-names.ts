// Dotted-quad strings for IPv4 addresses that arrive as bytes (the batched-UDP
// addon's source addresses, a capture's headers), from a direct-mapped cache:
// building the string costs more than the rest of a datagram's bookkeeping, and
// the same string object for the same client keeps its hash cached, so the
// policy's table lookups by address do not hash a fresh string per datagram
// (docs/performance.md, docs/replay.md). The address times an odd constant is a
// bijection of 32-bit numbers: its top bits pick the slot and its low bits, a
// small integer, tell the address within the slot; both sit beside the string in
// one array, one memory read per lookup. A collision replaces the slot: bounded
// (a few MiB at most), and never wrong, as the whole address is checked.
import { ipv4TextAt } from './ip.js';

export const IPV4_NAME_SLOT_BITS = 17;
export const IPV4_NAME_SLOTS = 1 << IPV4_NAME_SLOT_BITS;
const CHECK_MASK = (1 << (32 - IPV4_NAME_SLOT_BITS)) - 1;

export class Ipv4Names {
  private readonly cache: (number | string)[] = new Array<number | string>(2 * IPV4_NAME_SLOTS).fill(-1);
  /** the slot of the name name() last returned: callers may keep per-client data by it, checked by the name */
  slot = 0;

  /** the dotted quad of the 4 bytes at `at` */
  name(b: Uint8Array, at: number): string {
    const v = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
    const h = Math.imul(v, 0x9e3779b1);
    const slot = h >>> (32 - IPV4_NAME_SLOT_BITS);
    const check = h & CHECK_MASK;
    const cache = this.cache;
    this.slot = slot;
    if (cache[2 * slot] === check) return cache[2 * slot + 1] as string;
    const name = ipv4TextAt(b, at);
    cache[2 * slot] = check;
    cache[2 * slot + 1] = name;
    return name;
  }
}
