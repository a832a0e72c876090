// The operator's HTTP surface on metrics.listen, beside /metrics and /healthz:
// the dashboard at / and its JSON APIs, each answer bounded in size.
//   GET  /api/stats            counters and gauges as one JSON object
//   GET  /api/top?n=N          top prefixes by large-reply bytes, last minute (N <= 100)
//   GET  /api/blocks?limit=N&offset=M   a page of the current blocks (at most N, 10000 by default,
//        from the M-th; `next` is the offset of the following page, or null) and the latest 100 block events
//   POST /api/challenge?client=NONCE     the server's nonce and its proof of the token (proof.ts)
//   POST|DELETE /api/blocks?address=IP   block / unblock by hand: loopback peers proving the
//                                        token of metrics.token_file, same-origin only
// Every /api path answers only to a Host this listener owns (DNS rebinding);
// the rules are in control.ts and docs/security.md.
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import type { Route } from '../metrics/http-listener.js';
import type { OperatorView } from './view.js';
import { BlockRefusedError } from '../enforce/enforcer.js';
import { statsFromMetrics } from './stats.js';
import { hostAllowed, originAllowed, parseBlockTargetText, requestProven } from './control.js';
import { Challenges } from './challenges.js';
import { NONCE_RE, newNonce, serverProof, SCHEME } from './proof.js';
import type { HostPort } from '../config/address.js';
import { packageRoot } from '../config/package-root.js';

const MAX_TOP = 100;
const MAX_LISTED = 10_000;

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body) + '\n');
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function failed(res: http.ServerResponse): (err: Error) => void {
  return (err) => json(res, 500, { error: err.message });
}

/** 400 for a block by hand that cannot be made, with its stable code (docs/operations.md) */
function refused(res: http.ServerResponse, err: unknown): void {
  json(res, 400, err instanceof BlockRefusedError ? { error: err.message, code: err.code } : { error: (err as Error).message });
}

/** Static files of the dashboard, read once at start: src/dashboard and uPlot from node_modules. */
function assets(): Record<string, { type: string; body: Buffer }> {
  const dir = join(packageRoot(), 'src', 'dashboard') + sep;
  const require = createRequire(import.meta.url);
  const file = (path: string, type: string): { type: string; body: Buffer } => ({ type, body: readFileSync(path) });
  return {
    '/': file(`${dir}index.html`, 'text/html; charset=utf-8'),
    '/assets/dashboard.js': file(`${dir}dashboard.js`, 'text/javascript; charset=utf-8'),
    '/assets/dashboard.css': file(`${dir}dashboard.css`, 'text/css; charset=utf-8'),
    '/assets/uplot.js': file(require.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    '/assets/uplot.css': file(require.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8'),
  };
}

/** What guards the state changes: the listener's own address and the operator's token. */
export interface ControlGuard {
  readonly listen: HostPort;
  /** the token POST/DELETE require; null when none could be read or made (changes refused) */
  readonly token: string | null;
  /** why there is no token, for the 503 answer */
  readonly tokenError?: string;
  /** the clock of the nonces' expiry (Date.now) */
  readonly now?: () => number;
}

type Access = 'read' | 'challenge' | 'change';

/** Refuses what the caller may not do, answering for it; true when the request may go on. */
function admitted(req: http.IncomingMessage, res: http.ServerResponse, guard: ControlGuard, access: Access, challenges: Challenges): boolean {
  if (!hostAllowed(req.headers.host, guard.listen)) {
    json(res, 403, { error: 'Host is not this listener (use its address or localhost)' });
    return false;
  }
  if (access === 'read') return true;
  if (!isLoopback(req.socket.remoteAddress)) {
    json(res, 403, { error: 'changes only from loopback' });
    return false;
  }
  if (!originAllowed(req.headers as Record<string, string | undefined>)) {
    json(res, 403, { error: 'cross-origin changes are refused' });
    return false;
  }
  if (guard.token === null) {
    json(res, 503, { error: `no control token: ${guard.tokenError ?? 'unavailable'}` });
    return false;
  }
  if (access === 'challenge') return true;
  const now = (guard.now ?? Date.now)();
  if (!requestProven(req.headers.authorization, req.method ?? '', req.url ?? '', guard.token, challenges, now)) {
    res.setHeader('www-authenticate', SCHEME);
    json(res, 401, { error: 'a proof of the token of metrics.token_file is required (use `ampguard blocks`)' });
    return false;
  }
  return true;
}

export function operatorRoutes(view: OperatorView, guard: ControlGuard): Record<string, Route> {
  const routes: Record<string, Route> = {};
  const challenges = new Challenges();
  for (const [path, asset] of Object.entries(assets())) {
    routes[path] = (_req, res) => {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' }).end(asset.body);
    };
  }
  routes['/api/stats'] = (req, res) => {
    if (!admitted(req, res, guard, 'read', challenges)) return;
    return view.metricsJson().then((m) => json(res, 200, statsFromMetrics(m, Date.now())), failed(res));
  };
  routes['/api/top'] = (req, res, query) => {
    if (!admitted(req, res, guard, 'read', challenges)) return;
    const n = Math.max(1, Math.min(MAX_TOP, Number(query.get('n') ?? 20) || 20));
    return view.top(n).then(
      // rung 3 is the enforcer's to say: a blocked prefix still shows the bytes it was sent
      (top) => json(res, 200, { window_s: 60, top: top.map((t) => (view.enforcer.isBlocked(t.prefix) ? { ...t, rung: 3 } : t)) }),
      failed(res),
    );
  };
  routes['/api/challenge'] = (req, res, query) => {
    if (req.method !== 'POST') return json(res, 405, { error: 'POST' });
    if (!admitted(req, res, guard, 'challenge', challenges)) return;
    const client = query.get('client') ?? '';
    if (!NONCE_RE.test(client)) return json(res, 400, { error: 'client must be 64 hex digits' });
    const nonce = newNonce();
    challenges.issue(nonce, (guard.now ?? Date.now)());
    json(res, 200, { nonce, proof: serverProof(guard.token as string, client, nonce) });
  };
  routes['/api/blocks'] = (req, res, query) => {
    const e = view.enforcer;
    // promises are returned to the server's fault barrier: a throw in a callback is a 500, not an unhandled rejection
    // HEAD and GET only ever read; everything else that is not a change is refused
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (!admitted(req, res, guard, 'read', challenges)) return;
      // a page: only offset + limit entries are walked (the dashboard asks for none, every 2 s)
      const limit = Math.max(0, Math.min(MAX_LISTED, Number(query.get('limit') ?? MAX_LISTED) || 0));
      const offset = Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.floor(Number(query.get('offset') ?? 0)) || 0));
      // the API's names are snake_case (docs/api.md); one expiry each: a live block's seconds left, an event's wall-clock end
      const blocks = e.list(offset, limit).map((b) => ({ prefix: b.prefix, expires_in_s: b.expiresInSec, where: b.where }));
      const recent = e.recent().map((r) => ({
        prefix: r.prefix, address: r.address, reason: r.reason, level: r.level, rung: r.rung, charged: r.charged, at: r.at, expires_at: r.expiresAt,
        ...(r.dryRun ? { dry_run: true } : {}),
      }));
      const total = e.blockedCount();
      const next = limit > 0 && offset + blocks.length < total ? offset + blocks.length : null;
      json(res, 200, { mode: e.mode, degraded: e.stats.degraded, degraded_reason: e.stats.degradedReason, total, offset, next, blocks, recent });
      return;
    }
    if (req.method !== 'POST' && req.method !== 'DELETE') return json(res, 405, { error: 'GET, POST or DELETE' });
    if (!admitted(req, res, guard, 'change', challenges)) return;
    const parsed = parseBlockTargetText(query.get('address') ?? '');
    if (!parsed.ok) return json(res, 400, { error: parsed.error });
    if (parsed.bits !== undefined) {
      // the ladder never blocks a network: a network in the kernel is the operator's (docs/defence.md)
      if (req.method === 'POST') {
        try {
          return json(res, 200, { blocked: e.blockNetworkByHand(parsed.address, parsed.family, parsed.bits) });
        } catch (err) {
          return refused(res, err);
        }
      }
      return e.unblockNetwork(parsed.address, parsed.family, parsed.bits).then((prefix) => json(res, 200, { unblocked: prefix }), failed(res));
    }
    if (req.method === 'POST') {
      try {
        return json(res, 200, { blocked: e.blockByHand(parsed.address) });
      } catch (err) {
        return refused(res, err);
      }
    }
    // a blocked network holding the address is lifted too, and named: the answer never claims an unblock that is not
    return e.unblockAddress(parsed.address).then(({ prefix, networks }) => json(res, 200, { unblocked: prefix, networks }), failed(res));
  };
  return routes;
}
