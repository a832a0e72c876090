// The key a client's budget and block are kept under: its /prefix_v4 or
// /prefix_v6 network, as "address/len" (the address itself for a full-length
// prefix, the common case, which then costs no string work).
import { isIPv4 } from 'node:net';

export function prefixKey(address: string, family: 4 | 6, prefixV4: number, prefixV6: number): string {
  if (family === 4) return prefixV4 === 32 ? address : ipv4Prefix(address, prefixV4);
  return prefixV6 === 128 ? address : ipv6Prefix(address, prefixV6);
}

function ipv4Prefix(address: string, bits: number): string {
  const p = address.split('.');
  const value = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
  const masked = bits === 0 ? 0 : (value & (0xffffffff << (32 - bits))) >>> 0;
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${bits}`;
}

function ipv6Prefix(address: string, bits: number): string {
  const groups = expandIpv6(address);
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out.push(((groups[i] ?? 0) & mask).toString(16));
  }
  return `${out.join(':')}/${bits}`;
}

function expandIpv6(address: string): number[] {
  let text = address.split('%')[0] as string;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const extra: number[] = [];
  if (v4tail && isIPv4(v4tail[1] as string)) {
    const p = (v4tail[1] as string).split('.').map(Number);
    extra.push((p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!);
    text = text.slice(0, -(v4tail[1] as string).length).replace(/:$/, '') || '::';
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':').map((g) => parseInt(g, 16)) : [];
  const t = tail ? tail.split(':').map((g) => parseInt(g, 16)) : [];
  const fill = tail === undefined ? [] : Array<number>(8 - h.length - t.length - extra.length).fill(0);
  return [...h, ...fill, ...t, ...extra];
}
