// The single import of dns-packet (STYLE 7). Its decoders throw on bad input;
// every use below is wrapped so nothing escapes into the packet path.
import dnsPacket from 'dns-packet';
import type { DecodedPacket, Packet, Question } from 'dns-packet';

interface QuestionCodec {
  decode(buf: Buffer, offset: number): Question;
  encodingLength(q: Question): number;
}

const questionCodec = (dnsPacket as unknown as { question: QuestionCodec & { decode: { bytes: number } } }).question;

/** Length in bytes of the question at `offset`, or -1 when it does not decode. */
export function questionLength(buf: Buffer, offset: number): number {
  try {
    questionCodec.decode(buf, offset);
    return (questionCodec.decode as unknown as { bytes: number }).bytes;
  } catch {
    return -1;
  }
}

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
