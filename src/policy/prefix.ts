// The key a client's budget and block are kept under: its /prefix_v4 or
// /prefix_v6 network, as "address/len" (the address itself for a full-length
// prefix, the common case, which then costs no string work).
import { ipv4ToUint32 } from '../config/cidr.js';

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
const parsed = new Uint16Array(8);
/** ":0:0:0:0/64" and the like: the groups past the prefix are always zero */
const zeroTails = new Map<number, string>();

function ipv6Prefix(address: string, bits: number): string {
  if (!parseIpv6(address, groups)) return `${address}/${bits}`;
  const whole = Math.ceil(bits / 16);
  let out = '';
  for (let i = 0; i < whole; i++) {
    const keep = bits - i * 16;
    const mask = keep >= 16 ? 0xffff : (0xffff << (16 - keep)) & 0xffff;
    out += (i === 0 ? '' : ':') + (groups[i]! & mask).toString(16);
  }
  let tail = zeroTails.get(bits);
  if (tail === undefined) {
    tail = `${':0'.repeat(8 - whole)}/${bits}`;
    if (whole === 0) tail = tail.slice(1);
    zeroTails.set(bits, tail);
  }
  return out + tail;
}

/**
 * Parses an IPv6 literal as the kernel reports it (with "::", an embedded IPv4
 * tail, a %zone) into 8 groups, one character at a time and without allocating.
 */
function parseIpv6(address: string, out: Uint16Array): boolean {
  out.fill(0);
  let end = address.indexOf('%');
  if (end < 0) end = address.length;
  let tailGroups = 0;
  const lastColon = address.lastIndexOf(':', end - 1);
  const dot = address.indexOf('.', lastColon);
  if (dot > lastColon && dot < end) {
    // an embedded IPv4 tail (::ffff:192.0.2.1) is the last two groups
    const v4 = ipv4ToUint32(address.slice(lastColon + 1, end));
    if (v4 < 0) return false;
    out[6] = v4 >>> 16;
    out[7] = v4 & 0xffff;
    tailGroups = 2;
    // keep "::" before the tail, drop a lone ":"
    end = address.charCodeAt(lastColon - 1) === 58 ? lastColon + 1 : lastColon;
  }
  let n = 0;
  let gap = -1;
  let value = 0;
  let digits = 0;
  for (let k = 0; k < end; k++) {
    const c = address.charCodeAt(k);
    if (c === 58) {
      if (address.charCodeAt(k + 1) === 58 && k + 1 < end) {
        if (gap >= 0) return false;
        if (digits > 0) parsed[n++] = value;
        gap = n;
        value = 0;
        digits = 0;
        k++;
        continue;
      }
      if (digits === 0 || n >= 8) return false;
      parsed[n++] = value;
      value = 0;
      digits = 0;
      continue;
    }
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0 || digits === 4) return false;
    value = value * 16 + d;
    digits++;
  }
  if (digits > 0) {
    if (n >= 8) return false;
    parsed[n++] = value;
  }
  const room = 8 - tailGroups;
  if (gap < 0) {
    if (n !== room) return false;
    for (let i = 0; i < n; i++) out[i] = parsed[i]!;
    return true;
  }
  if (n >= room) return false;
  for (let i = 0; i < gap; i++) out[i] = parsed[i]!;
  for (let i = gap; i < n; i++) out[room - (n - i)] = parsed[i]!;
  return true;
}
