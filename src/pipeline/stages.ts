// The packet path of docs/packet-path.md, in order (CONTRIBUTING.md rule 1). Step 1 (malformed) is the
// parse in dns/query.ts, done by the listener before any stage; steps 4 and 7-8
// are the backend pool and enforce/, which act on these verdicts.
import { blockedClient } from '../policy/blocked-client.js';
import { anyToTcp } from '../policy/any-to-tcp.js';
import { sizeToTcp } from '../policy/size-to-tcp.js';
import { largeResponseBudget } from '../policy/large-response.js';
import type { PolicyEnv } from '../policy/env.js';
import type { QueryContext } from './context.js';
import { FORWARD, type Verdict } from './verdict.js';

/** Packet-path steps 2-3. `forward` means: on to a backend (step 4). */
export function runQueryStages(ctx: QueryContext, env: PolicyEnv, now: number): Verdict {
  return blockedClient(ctx, env, now) ?? anyToTcp(ctx, env.settings) ?? FORWARD;
}

/**
 * Packet-path steps 5-6 on a backend reply. `forward` sends the reply as it is, `answer`
 * sends the stand-in instead. The budget is charged with what is actually sent.
 */
export function runResponseStages(ctx: QueryContext, reply: Buffer, env: PolicyEnv, now: number): Verdict {
  const truncated = sizeToTcp(ctx, reply, env.settings);
  const sentBytes = truncated?.kind === 'answer' ? truncated.wire.length : reply.length;
  return largeResponseBudget(ctx, sentBytes, env, now) ?? truncated ?? FORWARD;
}
