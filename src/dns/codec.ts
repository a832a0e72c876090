// The single import of dns-packet (CONTRIBUTING.md rule 7). Its decoders throw on bad input;
// every use below is wrapped so nothing escapes into the packet path.
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, Question } from 'dns-packet';

/** Full decode, for tests, tools and health checks; never on the packet path. */
export function decodeMessage(buf: Buffer): (DecodedPacket & { rcode?: string }) | null {
  try {
    return dnsPacket.decode(buf);
  } catch {
    return null;
  }
}

export function encodeMessage(packet: Packet): Buffer {
  return dnsPacket.encode(packet);
}

export type { DecodedPacket, Packet, Question };
