// PROXY protocol v2 headers (haproxy's proxy-protocol.txt, section 2.2), so the
// recursor's ACLs, logs and ECS see the real client (PowerDNS proxy-protocol-from).
import { isIPv4 } from 'node:net';
import { ipv4ToUint32, parseIpv6 } from '../net/ip.js';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const CMD_LOCAL = 0x20;
const CMD_PROXY = 0x21;
const AF_INET = 0x10;
const AF_INET6 = 0x20;
const STREAM = 0x01;
const DGRAM = 0x02;

/** A LOCAL header (no addresses): what health checks send, as dnsdist does. */
export const PROXY_V2_LOCAL = Buffer.concat([SIGNATURE, Buffer.from([CMD_LOCAL, 0x00, 0x00, 0x00])]);

const groups = new Uint16Array(8);

/**
 * The address as `bytes` big-endian bytes, parsed in place (no BigInt, no
 * allocation: this runs per forwarded query): an IPv4 address fills the last 4
 * of them, an IPv6 one its last `bytes` / 2 groups, anything else zeros.
 */
function writeAddress(out: Buffer, offset: number, address: string, bytes: number): void {
  out.fill(0, offset, offset + bytes);
  const v4 = ipv4ToUint32(address);
  if (v4 >= 0) {
    out.writeUInt32BE(v4, offset + bytes - 4);
    return;
  }
  if (!address.includes(':') || !parseIpv6(address, groups)) return;
  for (let i = 0, g = 8 - bytes / 2; g < 8; i += 2, g++) {
    out[offset + i] = groups[g]! >>> 8;
    out[offset + i + 1] = groups[g]! & 0xff;
  }
}

export function proxyV2Header(
  proto: 'udp' | 'tcp',
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
): Buffer {
  const v4 = isIPv4(source);
  const addrLen = v4 ? 4 : 16;
  const bodyLen = addrLen * 2 + 4;
  const out = Buffer.allocUnsafe(16 + bodyLen);
  SIGNATURE.copy(out, 0);
  out[12] = CMD_PROXY;
  out[13] = (v4 ? AF_INET : AF_INET6) | (proto === 'udp' ? DGRAM : STREAM);
  out.writeUInt16BE(bodyLen, 14);
  writeAddress(out, 16, source, addrLen);
  writeAddress(out, 16 + addrLen, destination, addrLen);
  out.writeUInt16BE(sourcePort, 16 + addrLen * 2);
  out.writeUInt16BE(destinationPort, 18 + addrLen * 2);
  return out;
}
