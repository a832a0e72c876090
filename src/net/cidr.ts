// CIDR allowlists compiled at load into numeric matchers (CONTRIBUTING.md rule 13), and
// into node's BlockList for the membership test of each large reply.
import { BlockList } from 'node:net';
import { ipv4ToUint32, ipv6Text, parseIpv6 } from './ip.js';

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly bits: number;
  /** IPv4 only: the same as 32-bit numbers, so matching needs no BigInt */
  readonly v4Network: number;
  readonly v4Mask: number;
}

const scratch = new Uint16Array(8);

export function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } | null {
  const v4 = ipv4ToUint32(ip);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  if (!ip.includes(':') || !parseIpv6(ip, scratch)) return null;
  let value = 0n;
  for (const g of scratch) value = (value << 16n) | BigInt(g);
  return { family: 6, value };
}

function maskBits(family: 4 | 6, bits: number): bigint {
  const width = family === 4 ? 32n : 128n;
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(bits))) - 1n);
}

export function parseCidr(text: string): Cidr | null {
  const [addr, bitsText] = text.split('/') as [string, string | undefined];
  const ip = ipToBigInt(addr);
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) return null;
  const network = ip.value & maskBits(ip.family, bits);
  const v4Mask = ip.family === 4 ? Number(maskBits(4, bits)) : 0;
  return { family: ip.family, network, bits, v4Network: ip.family === 4 ? Number(network) : 0, v4Mask };
}

/**
 * Whether `ip` is in one of `cidrs`: what the allowlist asks per large reply.
 * IPv4 with 32-bit masks; IPv6 with node's BlockList (built once per list: a
 * reload compiles a new list), holding the IPv6 CIDRs only, since BlockList
 * also matches IPv4-mapped IPv6 against IPv4 rules, which a CIDR of the other
 * family never did here. Neither allocates or uses BigInt per call.
 */
export function anyCidrContains(cidrs: readonly Cidr[], ip: string): boolean {
  if (!ip.includes(':')) {
    const v = ipv4ToUint32(ip);
    if (v < 0) return false;
    for (const c of cidrs) if (c.family === 4 && ((v & c.v4Mask) >>> 0) === c.v4Network) return true;
    return false;
  }
  let v6 = v6Lists.get(cidrs);
  if (v6 === undefined) {
    v6 = new BlockList();
    for (const c of cidrs) if (c.family === 6) v6.addSubnet(networkText6(c.network), c.bits, 'ipv6');
    v6Lists.set(cidrs, v6);
  }
  return v6.check(ip, 'ipv6');
}

const v6Lists = new WeakMap<readonly Cidr[], BlockList>();

function networkText6(v: bigint): string {
  const g = new Uint16Array(8);
  for (let i = 7; i >= 0; i--, v >>= 16n) g[i] = Number(v & 0xffffn);
  return ipv6Text(g);
}
