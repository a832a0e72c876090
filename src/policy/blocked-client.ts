// Packet-path step 2 — UDP from a blocked prefix is dropped before any work. Reads the
// userspace block table (kept by enforce/), policy.large_response.prefix_v4/v6
// and, when aggregates are on, the aggregate network around the client (a
// network the ladder blocked, docs/defence.md).
// Feeds ampguard_dropped_total{reason="blocked"} through the listener.
// This covers the moments before the kernel rule catches a client, and hosts
// without kernel enforcement. TCP is never blocked: a spoofer cannot use it.
import { prefixKey } from './prefix.js';
import { drop, type Verdict } from './verdict.js';
import type { QueryContext } from './context.js';
import type { PolicyEnv } from './env.js';

const BLOCKED = drop('blocked');

export function blockedClient(ctx: QueryContext, env: PolicyEnv, now: number): Verdict | null {
  if (ctx.proto !== 'udp' || env.blocks.isEmpty) return null;
  const s = env.settings;
  if (env.blocks.isBlocked(prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6), now)) return BLOCKED;
  // only while something is blocked at all: one more key per query then
  const agg = s.aggregate;
  if (agg.enabled && env.blocks.isBlocked(prefixKey(ctx.clientAddress, ctx.family, agg.prefixV4, agg.prefixV6), now)) return BLOCKED;
  return null;
}
