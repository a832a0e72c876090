// CIDR allowlists compiled at load into numeric matchers (STYLE 13). Matching is
// only done when a prefix is about to be blocked, never per packet.
import { isIP } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly bits: number;
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
  return { family: ip.family, network: ip.value & maskBits(ip.family, bits), bits };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const parsed = ipToBigInt(ip);
  if (!parsed || parsed.family !== cidr.family) return false;
  return (parsed.value & maskBits(cidr.family, cidr.bits)) === cidr.network;
}

export function anyCidrContains(cidrs: readonly Cidr[], ip: string): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true;
  return false;
}
