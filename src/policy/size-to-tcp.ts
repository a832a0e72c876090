// Packet-path step 5 — size-to-tcp. Reads policy.truncate_above. Feeds
// ampguard_truncated_total{reason="size"} through the listener.
// A UDP reply larger than we allow, or than the client said it can take, is
// replaced by TC=1 so the large answer only ever travels over TCP.
import { buildTruncated } from '../dns/local-answer.js';
import type { QueryContext } from './context.js';
import type { Verdict } from './verdict.js';
import type { PolicySettings } from '../config/compile.js';

/** RFC 1035 4.2.1: without EDNS a UDP message is at most 512 bytes; RFC 6891: a smaller advertised size means 512. */
const CLASSIC_UDP_LIMIT = 512;

function udpReplyLimit(ednsUdpSize: number, truncateAbove: number): number {
  const clientLimit = ednsUdpSize > CLASSIC_UDP_LIMIT ? ednsUdpSize : CLASSIC_UDP_LIMIT;
  return clientLimit < truncateAbove ? clientLimit : truncateAbove;
}

export function sizeToTcp(ctx: QueryContext, replyBytes: number, settings: PolicySettings): Verdict | null {
  if (ctx.proto !== 'udp') return null;
  if (replyBytes <= udpReplyLimit(ctx.parsed.ednsUdpSize, settings.truncateAbove)) return null;
  return { kind: 'answer', wire: buildTruncated(ctx.query, ctx.parsed), reason: 'size' };
}
