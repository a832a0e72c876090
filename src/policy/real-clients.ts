// The live collateral figure (docs/defence.md, "Collateral"): the real clients
// that are on TC or blocked now. A real client is a prefix that did what a
// spoofer cannot fake cheaply: a TCP query the backend answered, or a small
// UDP answer (shorter than policy.large_response.min_bytes, no TC, NOERROR or
// NXDOMAIN). Kept in a bounded LRU of MAX_REAL_CLIENTS prefixes, each with the
// network around it; small answers are only noted while something is on rung
// 2 or blocked, so a resolver at peace pays nothing per reply. Counted when
// someone asks (a scrape), never per packet. The replay has its own measure
// (replay/collateral.ts).
import { LRUCache } from 'lru-cache';
import { prefixKey } from './prefix.js';
import type { PolicyEnv } from './env.js';
import type { QueryContext } from './context.js';

interface CollateralNow {
  blocked: number;
  tc: number;
}

/** prefixes remembered as real clients (the least recently seen forgotten first) */
export const MAX_REAL_CLIENTS = 4096;

export class RealClients {
  /** prefix key -> the aggregate network key around it ('' when aggregates are off) */
  private readonly clients = new LRUCache<string, string>({ max: MAX_REAL_CLIENTS });

  get size(): number {
    return this.clients.size;
  }

  /** A TCP query from `ctx` that the backend answered. */
  tcpAnswered(ctx: QueryContext, env: PolicyEnv): void {
    this.note(ctx, env);
  }

  /** A UDP reply sent to `ctx`'s client as it is: a small answer marks a real client, while the defence is acting. */
  udpReply(ctx: QueryContext, reply: Buffer, env: PolicyEnv): void {
    if (reply.length >= env.settings.largeMinBytes || reply.length < 4) return;
    if (env.blocks.isEmpty && env.budgets.truncatingCount('prefix') === 0 && env.budgets.truncatingCount('aggregate') === 0) return;
    const rcode = reply[3]! & 0x0f;
    if ((reply[2]! & 0x02) !== 0 || (rcode !== 0 && rcode !== 3)) return;
    this.note(ctx, env);
  }

  private note(ctx: QueryContext, env: PolicyEnv): void {
    const s = env.settings;
    const prefix = prefixKey(ctx.clientAddress, ctx.family, s.prefixV4, s.prefixV6);
    if (this.clients.get(prefix) !== undefined) return;
    const agg = s.aggregate;
    this.clients.set(prefix, agg.enabled ? prefixKey(ctx.clientAddress, ctx.family, agg.prefixV4, agg.prefixV6) : '');
  }

  /**
   * The real clients whose prefix or network is blocked at `now` (they lose
   * every UDP answer), and those whose prefix or network is on rung 2 (their
   * large answers get TC, their small ones flow; a real client asks again
   * over TCP): a walk of at most MAX_REAL_CLIENTS entries.
   */
  collateral(env: PolicyEnv, now: number): CollateralNow {
    const out = { blocked: 0, tc: 0 };
    const b = env.budgets;
    const blocks = env.blocks;
    const anyBlocked = !blocks.isEmpty;
    this.clients.forEach((network, prefix) => {
      if (anyBlocked && (blocks.isBlocked(prefix, now) || (network !== '' && blocks.isBlocked(network, now)))) out.blocked++;
      else if (b.isTruncating('prefix', prefix) || (network !== '' && b.isTruncating('aggregate', network))) out.tc++;
    });
    return out;
  }
}
