// Runs test/helpers/ladder-traffic.mjs in the client namespace and reads its
// totals: the load of the ladder's system tests (ladder, collateral).
import { resolve } from 'node:path';
import type { Hosts } from './netns.js';
import { startProc } from './process.js';

const TRAFFIC = resolve('test/helpers/ladder-traffic.mjs');

/** what ladder-traffic.mjs prints as its last line */
export interface Totals {
  lookups: number;
  full: number;
  viaTcp: number;
  tc: number;
  servfail: number;
  unanswered: number;
  bytesSent: number;
  bytesReceived: number;
  perSecond: { sent: number; received: number; replies: number }[];
}

/** `cmd args` in the client namespace, to its end; its output */
export async function runOnClient(hosts: Hosts, cmd: string, args: string[]): Promise<string> {
  const p = startProc(cmd, args, { netns: hosts.client });
  if (p.child.exitCode === null) await new Promise((r) => p.child.once('exit', r));
  return p.output();
}

/** `qps` lookups a second of kind `mode` for `seconds` from `sources` to `server`:53 */
export async function traffic(hosts: Hosts, mode: string, server: string, seconds: number, qps: number, sources: string[]): Promise<Totals> {
  const out = await runOnClient(hosts, 'node', [TRAFFIC, mode, server, '53', String(seconds), String(qps), sources.join(',')]);
  try {
    return JSON.parse(out.trim().split('\n').pop() ?? '') as Totals;
  } catch {
    throw new Error(`traffic ${mode} failed: ${out.slice(-2000)}`);
  }
}

/** the seconds after the first `skip` (the last one is partial and left out) where more came back than was sent */
export function amplifiedSeconds(t: Totals, skip: number): string[] {
  return t.perSecond
    .slice(skip, -1)
    .map((s, i) => ({ ...s, second: i + skip }))
    .filter((s) => s.received > s.sent)
    .map((s) => `second ${s.second}: ${s.received} bytes received for ${s.sent} sent`);
}
