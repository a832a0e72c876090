// What may be blocked, decided once before anything is queued (docs/enforcement.md):
// an address is normalised (IPv4-mapped IPv6 becomes IPv4, IPv6 text becomes
// its canonical compressed form) and refused when no real client can have it
// (unspecified, 0/8, multicast, broadcast, a zone id), and its prefix is
// refused when it would cover an allowlisted address. Loopback is blockable,
// but in userspace only: the kernel cannot hold ::1's /64 (it is "::", which
// ipset calls a null element) and a kernel block of the operator's own host
// would outlive the process.
import { ipv4Text, ipv4ToUint32, ipv6Text, parseIpv6, readClientAddress } from '../net/ip.js';
import type { Cidr } from '../net/cidr.js';
import { prefixKey } from './prefix.js';

type BlockTarget =
  | {
      readonly ok: true;
      /** the address as normalised: dotted IPv4, or compressed lower-case IPv6 */
      readonly address: string;
      readonly family: 4 | 6;
      /** the block key: the budget prefix of the address */
      readonly prefix: string;
      /** false when only the userspace table may hold it (loopback, a prefix whose network is unspecified) */
      readonly kernel: boolean;
    }
  | { readonly ok: false; readonly reason: 'invalid' | 'allowlist'; readonly error: string };

interface TargetSettings {
  readonly prefixV4: number;
  readonly prefixV6: number;
  readonly allowlist: readonly Cidr[];
}

const groups = new Uint16Array(8);

type Normalised = { address: string; family: 4 | 6; v4: number } | { error: string };

/** The address as the block table keys it, or why it can never be a client. */
export function normaliseAddress(text: string): Normalised {
  const a = readClientAddress(text);
  if ('error' in a) return a;
  if (a.family === 6) {
    if (a.groups[0]! >>> 8 === 0xff) return { error: `"${text}" is a multicast address` };
    return { address: a.address, family: 6, v4: -1 };
  }
  const { address, v4 } = a;
  if (v4 >>> 24 === 0) return { error: `"${address}" is in 0.0.0.0/8 ("this network"), never a client` };
  if (v4 >>> 28 === 0xe) return { error: `"${address}" is a multicast address` };
  if (v4 >>> 28 === 0xf) return { error: `"${address}" is reserved or broadcast, never a client` };
  return { address, family: 4, v4 };
}

/** Decides whether `text` may be blocked under the current prefix lengths and allowlist. */
export function blockTarget(text: string, s: TargetSettings): BlockTarget {
  const n = normaliseAddress(text);
  if ('error' in n) return { ok: false, reason: 'invalid', error: n.error };
  const prefix = prefixKey(n.address, n.family, s.prefixV4, s.prefixV6);
  const covered = allowlistedInside(prefix, n.family, s.allowlist);
  if (covered) return { ok: false, reason: 'allowlist', error: `${prefix} contains the allowlisted ${covered}` };
  return { ok: true, address: n.address, family: n.family, prefix, kernel: kernelHoldable(n, prefix) };
}

function kernelHoldable(n: { address: string; family: 4 | 6; v4: number }, prefix: string): boolean {
  if (n.family === 4) return n.v4 >>> 24 !== 127;
  if (n.address === '::1') return false;
  parseIpv6(prefix.split('/')[0] as string, groups);
  return groups.some((g) => g !== 0);
}

/** The first allowlist CIDR that overlaps `prefix` ("net/len" or a bare address), as text, or null. */
export function allowlistedInside(prefix: string, family: 4 | 6, allowlist: readonly Cidr[]): string | null {
  if (allowlist.length === 0) return null;
  const slash = prefix.indexOf('/');
  const width = family === 4 ? 32 : 128;
  const bits = slash < 0 ? width : Number(prefix.slice(slash + 1));
  const network = toBigInt(slash < 0 ? prefix : prefix.slice(0, slash), family);
  if (network === null) return null;
  for (const c of allowlist) {
    if (c.family !== family) continue;
    // two networks overlap when they agree on the shorter of their two prefixes
    const common = Math.min(bits, c.bits);
    const mask = common === 0 ? 0n : ((1n << BigInt(common)) - 1n) << BigInt(width - common);
    if ((network & mask) === (c.network & mask)) return `${formatBig(c.network, family)}/${c.bits}`;
  }
  return null;
}

function toBigInt(address: string, family: 4 | 6): bigint | null {
  if (family === 4) {
    const v = ipv4ToUint32(address);
    return v < 0 ? null : BigInt(v);
  }
  if (!parseIpv6(address, groups)) return null;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

function formatBig(v: bigint, family: 4 | 6): string {
  if (family === 4) return ipv4Text(Number(v));
  const g = new Uint16Array(8);
  for (let i = 7; i >= 0; i--) {
    g[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  return ipv6Text(g);
}

const IPV6_LOOPBACK: readonly Cidr[] = [{ family: 6, network: 1n, bits: 128, v4Network: 0, v4Mask: 0 }];

/**
 * Why the ladder may not block a key that holds the IPv6 loopback, or null.
 * The kernel takes datagrams from the wire with any source in ::/64 but
 * IPv4-mapped ones (::5, ::198.18.0.5), so a remote spoofer can spend the
 * budget of ::1's /64, and a block of it would drop the host's own ::1
 * clients; a block by hand of ::1 stays the operator's to make.
 */
export function holdsLoopback(prefix: string, family: 4 | 6): string | null {
  if (family !== 6 || allowlistedInside(prefix, 6, IPV6_LOOPBACK) === null) return null;
  return `${prefix} holds ::1, and a spoofer can send from it: never blocked by the ladder`;
}

/**
 * Whether the block an offender asks for may be made: its address is a
 * client's, its block key (the budget prefix, or the wider network the
 * ladder names) covers no allowlisted address, and not ::1 (holdsLoopback).
 * What a cluster worker checks before it blocks locally, so it never drops
 * what the primary refuses.
 */
export function offenderBlockable(o: { readonly address: string; readonly prefix: string; readonly family: 4 | 6 }, s: TargetSettings): boolean {
  const t = blockTarget(o.address, s);
  if (!t.ok || holdsLoopback(o.prefix, o.family) !== null) return false;
  return o.prefix === t.prefix || allowlistedInside(o.prefix, o.family, s.allowlist) === null;
}
