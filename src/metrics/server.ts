// GET /metrics (Prometheus text) and GET /healthz (200 while a backend is up).
import http from 'node:http';
import type { HostPort } from '../config/address.js';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams) => void;

/** A prom-client Registry, or the cluster primary's aggregate of its workers' registries. */
export interface MetricsText {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServerDeps {
  readonly registry: MetricsText;
  healthy(): boolean | Promise<boolean>;
  /** further paths, e.g. /api/blocks */
  readonly routes?: Readonly<Record<string, Route>>;
}

export function startMetricsServer(listen: HostPort, deps: MetricsServerDeps): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const route = deps.routes?.[path];
    if (route) {
      route(req, res, url.searchParams);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      deps.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': deps.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (path === '/healthz') {
      Promise.resolve(deps.healthy()).then(
        (ok) => res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'no backend up\n'),
        () => res.writeHead(503).end('health unknown\n'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
