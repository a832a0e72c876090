// IP literals to numbers, a character at a time and without allocating: the
// one parser behind allowlist CIDRs, budget prefixes and PROXY headers.

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
