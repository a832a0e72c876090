// The key a client's budget and block are kept under: its /prefix_v4 or
// /prefix_v6 network, as "address/len" (the address itself for a full-length
// prefix, the common case, which then costs no string work).
import { ipv4Text, ipv4ToUint32, parseIpv6 } from '../net/ip.js';

export function prefixKey(address: string, family: 4 | 6, prefixV4: number, prefixV6: number): string {
  if (family === 4) return prefixV4 === 32 ? address : ipv4Prefix(address, prefixV4);
  return prefixV6 === 128 ? address : ipv6Prefix(address, prefixV6);
}

function ipv4Prefix(address: string, bits: number): string {
  const value = ipv4ToUint32(address);
  if (value < 0) return `${address}/${bits}`;
  const masked = bits === 0 ? 0 : (value & (0xffffffff << (32 - bits))) >>> 0;
  return `${ipv4Text(masked)}/${bits}`;
}

const groups = new Uint16Array(8);
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
