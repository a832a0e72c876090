// CIDR allowlists compiled at load into numeric matchers (STYLE 13). Matching is
// only done when a prefix is about to be blocked, never per packet.
import { isIP } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly bits: number;
  /** IPv4 only: the same as 32-bit numbers, so matching needs no BigInt */
  readonly v4Network: number;
  readonly v4Mask: number;
}

/** "a.b.c.d" as an unsigned 32-bit number, or -1. */
export function ipv4ToUint32(ip: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return value * 256 + part;
}

export function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } | null {
  const family = isIP(ip);
  if (family === 4) {
    const parts = ip.split('.').map(Number);
    return { family, value: BigInt((((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!) >>> 0) };
  }
  if (family !== 6) return null;
  return { family, value: ipv6ToBigInt(ip) };
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const p = (dotted[1] as string).split('.').map(Number);
    text = text.slice(0, -(dotted[1] as string).length) +
      (((p[0]! << 8) | p[1]!).toString(16)) + ':' + (((p[2]! << 8) | p[3]!).toString(16));
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return value;
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
