// From a captured frame to the DNS payload and its endpoints: link layer
// (Ethernet with any number of VLAN tags, Linux cooked SLL and SLL2, raw IP,
// BSD loopback), IPv4 or IPv6 (with its extension headers), then UDP or TCP.
// What is not an IP packet carrying UDP or TCP is a skip with its reason,
// counted by the caller (docs/replay.md); a fragment is described in the
// fragment fields for the reassembler (reassembly.ts). One decoder object
// is reused for every frame and allocates nothing: the payload is a range of
// the frame's buffer (a Buffer view costs more than the rest of the decode),
// and fields are read byte by byte, which V8 inlines, unlike Buffer's readers.
import { ipv6Text } from '../net/ip.js';
import { Ipv4Names } from '../net/ipv4-names.js';
import type { FragmentView } from './reassembly.js';

const LINK_NULL = 0;
export const LINK_ETHERNET = 1;
export const LINK_RAW = 101;
const LINK_RAW_ALT = 12;
const LINK_LOOP = 108;
export const LINK_SLL = 113;
const LINK_IPV4 = 228;
const LINK_IPV6 = 229;
export const LINK_SLL2 = 276;

export type SkipReason = 'link_type' | 'not_ip' | 'fragment' | 'not_udp_tcp' | 'short';

export const PROTO_TCP = 6;
const PROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;

/** big-endian 16 and 32 bits at `at`; the caller has checked the bounds */
function u16(d: Buffer, at: number): number {
  return (d[at]! << 8) | d[at + 1]!;
}

function u32(d: Buffer, at: number): number {
  return ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;
}

export class Decoded implements FragmentView {
  family: 4 | 6 = 4;
  proto = 0;
  srcPort = 0;
  dstPort = 0;
  /** the UDP or TCP payload as captured: bytes [payloadStart, payloadEnd) of `frame` */
  payloadStart = 0;
  payloadEnd = 0;
  /** the UDP payload's length on the wire (from the UDP header), which snaplen may have cut */
  wireLength = 0;
  tcpFlags = 0;
  tcpSeq = 0;
  /** the buffer of the frame last decoded (the reader's: valid until its next frame) */
  frame: Buffer = Buffer.alloc(0);
  /** where the frame ends in `frame` */
  private stop = 0;
  private srcAt = 0;
  private dstAt = 0;
  private readonly groups = new Uint16Array(8);
  // after decode() returned 'fragment': the fragment, as reassembly.ts reads it
  fragHeaderAt = 0;
  fragHeaderLen = 0;
  fragId = 0;
  fragOffset = 0;
  fragMore = false;
  fragNext = 0;
  fragDataAt = 0;
  fragCapEnd = 0;
  fragWireEnd = 0;
  fragAddrAt = 0;
  /** IPv4 address strings, the same object for the same client (net/ipv4-names.ts) */
  private readonly v4Names = new Ipv4Names();

  /** Decodes `data` of link type `link`; null when it is a UDP or TCP packet, else why not. */
  decode(data: Buffer, link: number, start = 0, stop = data.length): SkipReason | null {
    this.frame = data;
    this.stop = stop;
    let at = start;
    let ethertype: number;
    switch (link) {
      case LINK_ETHERNET:
        if (stop < at + 14) return 'short';
        ethertype = u16(data, at + 12);
        at += 14;
        break;
      case LINK_SLL:
        if (stop < at + 16) return 'short';
        ethertype = u16(data, at + 14);
        at += 16;
        break;
      case LINK_SLL2:
        if (stop < at + 20) return 'short';
        ethertype = u16(data, at);
        at += 20;
        break;
      case LINK_RAW:
      case LINK_RAW_ALT:
      case LINK_IPV4:
      case LINK_IPV6:
        if (stop < at + 1) return 'short';
        ethertype = data[at]! >> 4 === 6 ? 0x86dd : 0x0800;
        break;
      case LINK_NULL:
      case LINK_LOOP: {
        // a 4-byte address family, in the capturing host's byte order (NULL) or big-endian (LOOP)
        if (stop < at + 5) return 'short';
        ethertype = data[at + 4]! >> 4 === 6 ? 0x86dd : 0x0800;
        at += 4;
        break;
      }
      default:
        return 'link_type';
    }
    // 802.1Q and 802.1ad tags, stacked (QinQ): 4 bytes each
    while (ethertype === 0x8100 || ethertype === 0x88a8 || ethertype === 0x9100) {
      if (stop < at + 4) return 'short';
      ethertype = u16(data, at + 2);
      at += 4;
    }
    if (ethertype === 0x0800) return this.ipv4(data, at);
    if (ethertype === 0x86dd) return this.ipv6(data, at);
    return 'not_ip';
  }

  /** the payload as a view of the frame (it allocates: the UDP path reads `frame` by offsets) */
  get payload(): Buffer {
    return this.frame.subarray(this.payloadStart, this.payloadEnd);
  }

  /**
   * The cache slot of the IPv4 address source() or destination() last
   * returned, -1 after an IPv6 one: callers may keep their own per-client
   * data in slots of the same index, checked by the address string.
   */
  slot = -1;

  /** the source address, as the policy keys it (dotted IPv4, RFC 5952 IPv6) */
  source(): string {
    return this.address(this.srcAt);
  }

  destination(): string {
    return this.address(this.dstAt);
  }

  /** 20 bits of the source (or destination) address, to key the pairing table by number */
  addressBits(source: boolean): number {
    const d = this.frame;
    const at = source ? this.srcAt : this.dstAt;
    const last = this.family === 4 ? at : at + 12;
    return (u32(d, last) ^ (this.family === 6 ? u32(d, at + 4) : 0)) & 0xfffff;
  }

  private address(at: number): string {
    const d = this.frame;
    if (this.family === 4) {
      const name = this.v4Names.name(d, at);
      this.slot = this.v4Names.slot;
      return name;
    }
    this.slot = -1;
    const g = this.groups;
    for (let i = 0; i < 8; i++) g[i] = (d[at + 2 * i]! << 8) | d[at + 2 * i + 1]!;
    return ipv6Text(g);
  }

  private ipv4(d: Buffer, at: number): SkipReason | null {
    if (this.stop < at + 20) return 'short';
    if (d[at]! >> 4 !== 4) return 'not_ip';
    const ihl = (d[at]! & 15) * 4;
    const total = u16(d, at + 2);
    if (ihl < 20 || total < ihl) return 'short';
    this.family = 4;
    this.srcAt = at + 12;
    this.dstAt = at + 16;
    // Ethernet pads short frames: the IP total length says where the packet ends
    const end = Math.min(this.stop, at + total);
    // more fragments, or not the first: for the reassembler
    const frag = u16(d, at + 6);
    if ((frag & 0x3fff) !== 0) {
      if (at + ihl > end) return 'short';
      this.fragHeaderAt = at;
      this.fragHeaderLen = ihl;
      this.fragId = u16(d, at + 4);
      this.fragOffset = (frag & 0x1fff) * 8;
      this.fragMore = (frag & 0x2000) !== 0;
      this.fragNext = d[at + 9]!;
      this.fragDataAt = at + ihl;
      this.fragCapEnd = end;
      this.fragWireEnd = at + total;
      this.fragAddrAt = at + 12;
      return 'fragment';
    }
    return this.transport(d, d[at + 9]!, at + ihl, end, at + total);
  }

  private ipv6(d: Buffer, at: number): SkipReason | null {
    if (this.stop < at + 40) return 'short';
    if (d[at]! >> 4 !== 6) return 'not_ip';
    const wireEnd = at + 40 + u16(d, at + 4);
    const end = Math.min(this.stop, wireEnd);
    let next = d[at + 6]!;
    let o = at + 40;
    this.family = 6;
    this.srcAt = at + 8;
    this.dstAt = at + 24;
    // extension headers (RFC 8200 4): hop-by-hop, routing, destination options, fragment, AH, mobility
    for (let hops = 0; hops < 16; hops++) {
      if (next === PROTO_UDP || next === PROTO_TCP) return this.transport(d, next, o, end, wireEnd);
      if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
        if (o + 8 > end) return 'short';
        next = d[o]!;
        o += 8 + d[o + 1]! * 8;
      } else if (next === 44) {
        if (o + 8 > end) return 'short';
        // an atomic fragment (offset 0, no more fragments) is the whole packet
        const frag = u16(d, o + 2);
        if ((frag & 0xfff9) !== 0) {
          this.fragHeaderAt = at;
          this.fragHeaderLen = 40;
          this.fragId = u32(d, o + 4);
          this.fragOffset = frag & 0xfff8;
          this.fragMore = (frag & 1) !== 0;
          this.fragNext = d[o]!;
          this.fragDataAt = o + 8;
          this.fragCapEnd = end;
          this.fragWireEnd = wireEnd;
          this.fragAddrAt = at + 8;
          return 'fragment';
        }
        next = d[o]!;
        o += 8;
      } else if (next === 51) {
        if (o + 8 > end) return 'short';
        next = d[o]!;
        o += (d[o + 1]! + 2) * 4;
      } else {
        return 'not_udp_tcp'; // ESP, no next header, ICMPv6...
      }
    }
    return 'not_udp_tcp';
  }

  private transport(d: Buffer, proto: number, at: number, end: number, wireEnd: number): SkipReason | null {
    this.proto = proto;
    if (proto === PROTO_UDP) {
      if (at + 8 > end) return 'short';
      this.srcPort = u16(d, at);
      this.dstPort = u16(d, at + 2);
      const udpLen = u16(d, at + 4);
      this.wireLength = udpLen >= 8 ? udpLen - 8 : Math.max(0, wireEnd - at - 8);
      this.payloadStart = at + 8;
      this.payloadEnd = Math.min(end, at + 8 + this.wireLength);
      return null;
    }
    if (proto === PROTO_TCP) {
      if (at + 20 > end) return 'short';
      this.srcPort = u16(d, at);
      this.dstPort = u16(d, at + 2);
      this.tcpSeq = u32(d, at + 4);
      const off = (d[at + 12]! >> 4) * 4;
      this.tcpFlags = d[at + 13]!;
      if (off < 20 || at + off > end) return 'short';
      this.payloadStart = at + off;
      this.payloadEnd = end;
      this.wireLength = Math.max(0, wireEnd - at - off);
      return null;
    }
    return 'not_udp_tcp';
  }
}
