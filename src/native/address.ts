// Client addresses arrive from the addon as bytes; the pipeline keys on the text
// form dgram gives (inet_ntop's: dotted quad, RFC 5952 for IPv6), so both modes
// produce the same budget and block keys.

export function formatIpv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 5952: lowercase hex, leading zeros dropped, the longest run (>= 2) of zero groups as "::". */
export function formatIpv6(b: Uint8Array, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!);
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
  // like inet_ntop (libuv's, which dgram uses): IPv4-compatible and -mapped forms end dotted
  if (bestAt === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) return `::${bestLen === 5 ? 'ffff:' : ''}${formatIpv4(b, o + 12)}`;
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}
