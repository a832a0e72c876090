// Address text, both ways, in one place: IP literals to numbers (a character
// at a time and without allocating: the one parser behind allowlist CIDRs,
// budget prefixes and PROXY headers), numbers and bytes to the text dgram gives
// (libuv's inet_ntop: dotted quads, RFC 5952 for IPv6 with the dotted tails),
// and an operator's or offender's address read as a client's.
import { isIP } from 'node:net';

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

const parsed = new Uint16Array(8);

/**
 * Parses an IPv6 literal as the kernel reports it (with "::", an embedded IPv4
 * tail, a %zone) into 8 groups, one character at a time and without allocating.
 */
export function parseIpv6(address: string, out: Uint16Array): boolean {
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

/** an unsigned 32-bit number as a dotted quad */
export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** the 4 bytes at `o` as a dotted quad */
export function ipv4TextAt(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/**
 * RFC 5952 as inet_ntop writes it: lowercase hex, leading zeros dropped, the
 * longest run (>= 2) of zero groups as "::", and IPv4-compatible and -mapped
 * addresses ending dotted.
 */
export function ipv6Text(g: Uint16Array): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestAt === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
    return `::${bestLen === 5 ? 'ffff:' : ''}${ipv4Text(((g[6]! << 16) | g[7]!) >>> 0)}`;
  }
  if (bestAt < 0) return hexGroups(g, 0, 8);
  return `${hexGroups(g, 0, bestAt)}::${hexGroups(g, bestAt + bestLen, 8)}`;
}

function hexGroups(g: Uint16Array, from: number, to: number): string {
  let out = '';
  for (let i = from; i < to; i++) out += i === from ? g[i]!.toString(16) : `:${g[i]!.toString(16)}`;
  return out;
}

const groupsAt = new Uint16Array(8);

/** the 16 bytes at `o` as ipv6Text writes them */
export function ipv6TextAt(b: Uint8Array, o: number): string {
  for (let i = 0; i < 8; i++) groupsAt[i] = (b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!;
  return ipv6Text(groupsAt);
}

type ClientAddress =
  | { readonly family: 4; readonly address: string; readonly v4: number }
  | { readonly family: 6; readonly address: string; readonly groups: Uint16Array }
  | { readonly error: string };

/**
 * An IP literal read as a client's address: no zone id, not unspecified, and
 * an IPv4-mapped IPv6 address is the IPv4 client it stands for (blocking
 * "::ffff:127.0.0.9" must block 127.0.0.9, not ::/64). `address` is the text
 * dgram would give for it.
 */
export function readClientAddress(text: string): ClientAddress {
  if (text.includes('%')) return { error: `"${text}": an address with a zone id cannot be blocked` };
  const family = text.length <= 64 ? isIP(text) : 0;
  if (family === 4) {
    const v4 = ipv4ToUint32(text);
    return v4 === 0 ? unspecified(text) : { family: 4, address: ipv4Text(v4), v4 };
  }
  const groups = new Uint16Array(8);
  if (family !== 6 || !parseIpv6(text, groups)) return { error: `"${text}" is not an IP address` };
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    const v4 = ((groups[6]! << 16) | groups[7]!) >>> 0;
    return v4 === 0 ? unspecified(text) : { family: 4, address: ipv4Text(v4), v4 };
  }
  if (groups.every((g) => g === 0)) return unspecified(text);
  return { family: 6, address: ipv6Text(groups), groups };
}

function unspecified(text: string): { error: string } {
  return { error: `"${text}" is the unspecified address, never a client` };
}
