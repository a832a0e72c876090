// CIDR allowlists compiled at load into numeric matchers (CONTRIBUTING.md rule 13). Matching is
// only done when a prefix is about to be blocked, never per packet.
import { ipv4ToUint32, parseIpv6 } from './ip.js';

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

export function cidrContains(cidr: Cidr, ip: string): boolean {
  if (cidr.family === 4) {
    const v = ipv4ToUint32(ip);
    return v >= 0 && ((v & cidr.v4Mask) >>> 0) === cidr.v4Network;
  }
  const parsed = ipToBigInt(ip);
  if (!parsed || parsed.family !== cidr.family) return false;
  return (parsed.value & maskBits(cidr.family, cidr.bits)) === cidr.network;
}

export function anyCidrContains(cidrs: readonly Cidr[], ip: string): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true;
  return false;
}
