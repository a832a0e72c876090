// Packet-path step 3 — any-to-tcp. Reads policy.any_to_tcp. Feeds
// ampguard_truncated_total{reason="any"} through the listener.
// ANY is the classic amplification query and rarely needed by real clients
// (RFC 8482), so over UDP it gets TC=1 at once, without the backend.
import { TYPE_ANY } from '../dns/header.js';
import { buildTruncated } from '../dns/local-answer.js';
import type { QueryContext } from './context.js';
import type { Verdict } from './verdict.js';
import type { PolicySettings } from '../config/compile.js';

export function anyToTcp(ctx: QueryContext, settings: PolicySettings): Verdict | null {
  if (!settings.anyToTcp || ctx.proto !== 'udp' || ctx.parsed.qtype !== TYPE_ANY) return null;
  return { kind: 'answer', wire: buildTruncated(ctx.query, ctx.parsed), reason: 'any' };
}
