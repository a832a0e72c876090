// /api/blocks on the metrics listener: what `ampguard blocks` talks to while
// ampguard runs, so the userspace table and the kernel set change together.
// Changes are accepted from loopback peers only; listing is read-only.
import type http from 'node:http';
import { isIP } from 'node:net';
import type { Enforcer } from '../enforce/enforcer.js';

const MAX_LISTED = 10_000;

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
}

export function blocksApi(enforcer: Enforcer) {
  return (req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams): void => {
    if (req.method === 'GET') {
      const all = enforcer.list();
      json(res, 200, { mode: enforcer.mode, degraded: enforcer.stats.degraded, total: all.length, blocks: all.slice(0, MAX_LISTED) });
      return;
    }
    if (req.method !== 'POST' && req.method !== 'DELETE') return json(res, 405, { error: 'GET, POST or DELETE' });
    if (!isLoopback(req.socket.remoteAddress)) return json(res, 403, { error: 'changes only from loopback' });
    const address = query.get('address') ?? '';
    const family = isIP(address);
    if (family !== 4 && family !== 6) return json(res, 400, { error: `not an IP address: "${address}"` });
    if (req.method === 'POST') {
      json(res, 200, { blocked: enforcer.blockByHand(address, family) });
      return;
    }
    enforcer.unblock(address, family).then(
      (prefix) => json(res, 200, { unblocked: prefix }),
      (err: Error) => json(res, 500, { error: err.message }),
    );
  };
}
