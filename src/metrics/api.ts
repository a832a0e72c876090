// The operator's HTTP surface on metrics.listen, beside /metrics and /healthz:
// the dashboard at / and its JSON APIs, each answer bounded in size.
//   GET  /api/stats            counters and gauges as one JSON object
//   GET  /api/top?n=N          top prefixes by large-reply bytes, last minute (N <= 100)
//   GET  /api/blocks?limit=N   current blocks (at most N, 10000 by default) and the latest 100 block events
//   POST|DELETE /api/blocks?address=IP   block / unblock by hand (loopback peers only)
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import type { Route } from './server.js';
import type { OperatorView } from './view.js';
import { statsFromMetrics } from './stats.js';

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

/** Static files of the dashboard, read once at start: src/dashboard and uPlot from node_modules. */
function assets(): Record<string, { type: string; body: Buffer }> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const dir = fileURLToPath(new URL(here.includes('/dist/') ? '../../../src/dashboard/' : '../dashboard/', import.meta.url));
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

export function operatorRoutes(view: OperatorView): Record<string, Route> {
  const routes: Record<string, Route> = {};
  for (const [path, asset] of Object.entries(assets())) {
    routes[path] = (_req, res) => {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' }).end(asset.body);
    };
  }
  routes['/api/stats'] = (_req, res) => {
    view.metricsJson().then((m) => json(res, 200, statsFromMetrics(m, Date.now())), failed(res));
  };
  routes['/api/top'] = (_req, res, query) => {
    const n = Math.max(1, Math.min(MAX_TOP, Number(query.get('n') ?? 20) || 20));
    view.top(n).then((top) => json(res, 200, { window_s: 60, top }), failed(res));
  };
  routes['/api/blocks'] = (req, res, query) => {
    const e = view.enforcer;
    if (req.method === 'GET') {
      const all = e.list();
      const limit = Math.max(0, Math.min(MAX_LISTED, Number(query.get('limit') ?? MAX_LISTED) || 0));
      json(res, 200, { mode: e.mode, degraded: e.stats.degraded, total: all.length, blocks: all.slice(0, limit), recent: e.recent() });
      return;
    }
    if (req.method !== 'POST' && req.method !== 'DELETE') return json(res, 405, { error: 'GET, POST or DELETE' });
    if (!isLoopback(req.socket.remoteAddress)) return json(res, 403, { error: 'changes only from loopback' });
    const address = query.get('address') ?? '';
    const family = isIP(address);
    if (family !== 4 && family !== 6) return json(res, 400, { error: `not an IP address: "${address}"` });
    if (req.method === 'POST') return json(res, 200, { blocked: e.blockByHand(address, family) });
    e.unblock(address, family).then((prefix) => json(res, 200, { unblocked: prefix }), failed(res));
  };
  return routes;
}
