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

const groups = new Uint16Array(8);

function ipv6Prefix(address: string, bits: number): string {
  if (!parseIpv6(address, groups)) return `${address}/${bits}`;
  let out = '';
  for (let i = 0; i < 8; i++) {
    const keep = bits - i * 16;
    const mask = keep >= 16 ? 0xffff : keep <= 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out += (i === 0 ? '' : ':') + (groups[i]! & mask).toString(16);
  }
  return `${out}/${bits}`;
}

/** Parses an IPv6 literal (with "::" and an embedded IPv4 tail) into 8 groups, without allocating arrays. */
function parseIpv6(address: string, out: Uint16Array): boolean {
  out.fill(0);
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tailGroups = 0;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) > lastColon) {
    // an embedded IPv4 tail (::ffff:192.0.2.1) is the last two groups
    const v4 = text.slice(lastColon + 1);
    if (!isIPv4(v4)) return false;
    const p = v4.split('.');
    out[6] = (Number(p[0]) << 8) | Number(p[1]);
    out[7] = (Number(p[2]) << 8) | Number(p[3]);
    tailGroups = 2;
    text = text.slice(0, lastColon);
    if (text.endsWith(':')) text += ':';
  }
  const gap = text.indexOf('::');
  const head = gap >= 0 ? text.slice(0, gap) : text;
  const tail = gap >= 0 ? text.slice(gap + 2) : '';
  let i = 0;
  if (head.length > 0) {
    for (const g of head.split(':')) {
      if (i >= 8 - tailGroups) return false;
      out[i++] = parseInt(g, 16);
    }
  }
  if (gap < 0) return i === 8 - tailGroups;
  const tailParts = tail.length > 0 ? tail.split(':') : [];
  let j = 8 - tailGroups - tailParts.length;
  if (j < i) return false;
  for (const g of tailParts) out[j++] = parseInt(g, 16);
  return true;
}
