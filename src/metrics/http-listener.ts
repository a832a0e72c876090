// The HTTP listener of metrics.listen: GET /metrics (Prometheus text), GET
// /healthz (200 while a backend is up), and the routes it is handed (the
// dashboard, /api/*).
// Every request runs inside a fault barrier: a request target that is not a
// path (`//`, `http://[`, absolute URLs), a route that throws or whose promise
// rejects, a client that goes away mid-answer: each ends that one request with
// 400 or 500, counted in ampguard_http_errors_total and logged at most once a
// second, never the process (docs/hostile-input.md).
import http from 'node:http';
import type { Socket } from 'node:net';
import type { HostPort } from '../config/address.js';
import { OncePerSecond, type ErrorSink } from '../log/once-per-second.js';
import { httpErrors } from './http-errors.js';
import { createLogger } from '../log/logger.js';
import { bindError } from '../net/bind-error.js';

/** A route may return a promise: a rejection is caught like a throw. */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams) => void | Promise<unknown>;

/** A prom-client Registry, or the cluster primary's aggregate of its workers' registries. */
interface MetricsText {
  metrics(): Promise<string>;
  readonly contentType: string;
}

interface HttpListenerDeps {
  readonly registry: MetricsText;
  /** ok, or the reasons why not, one per line in the 503's body */
  health(): { readonly ok: boolean; readonly reasons: readonly string[] };
  /** further paths, e.g. /api/blocks */
  readonly routes?: Readonly<Record<string, Route>>;
  /** where faults are logged (at most once a second); a logger of its own when absent */
  readonly errorLog?: ErrorSink;
}

/** Request targets longer than this are refused before any parsing (Node caps headers at 16 KiB anyway). */
const MAX_TARGET = 2048;

/**
 * The path and query of a request target: origin-form (`/path?query`) or
 * absolute-form (`http://host/path`); null for anything else: authority-form,
 * `*`, `//x` (which `new URL` would read as a host, or throw on), an absolute
 * URL that does not parse (`http://[`), control characters.
 */
export function parseTarget(target: string | undefined): { path: string; query: URLSearchParams } | null {
  if (target === undefined || target.length === 0 || target.length > MAX_TARGET) return null;
  for (let i = 0; i < target.length; i++) {
    const ch = target.charCodeAt(i);
    if (ch <= 0x20 || ch === 0x7f) return null;
  }
  // absolute-form (RFC 9112 3.2.2: a server must accept it): its path and query, if it parses
  if (/^https?:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return null;
    }
    return { path: url.pathname, query: url.searchParams };
  }
  if (target.charCodeAt(0) !== 0x2f /* / */ || target.startsWith('//')) return null;
  // the path as sent, not percent-decoded (as URL.pathname had it): no route has an escape in it
  const q = target.indexOf('?');
  return { path: q < 0 ? target : target.slice(0, q), query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
}

const ignore = (): void => undefined;

export function startHttpListener(listen: HostPort, deps: HttpListenerDeps): Promise<http.Server> {
  const faults = new OncePerSecond(deps.errorLog ?? createLogger('error').child({ module: 'http' }), 'http request failed');

  const fail = (res: http.ServerResponse, err: unknown): void => {
    httpErrors.internal_error++;
    faults.report('http_request', err);
    try {
      if (res.headersSent) res.destroy();
      else res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end('internal error\n');
    } catch {
      res.destroy();
    }
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void | Promise<unknown> => {
    const target = parseTarget(req.url);
    if (target === null) {
      httpErrors.bad_request++;
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' }).end('bad request target\n');
      return;
    }
    const { path, query } = target;
    const route = Object.hasOwn(deps.routes ?? {}, path) ? deps.routes![path] : undefined;
    if (route) return route(req, res, query);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      return deps.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': deps.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    }
    if (path === '/healthz') {
      return Promise.resolve()
        .then(() => deps.health())
        .then(
          (h) => res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(h.ok ? 'ok\n' : `${h.reasons.join('\n')}\n`),
          () => res.writeHead(503).end('health unknown\n'),
        );
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };

  const server = http.createServer((req, res) => {
    // a client that resets mid-request must not surface as an unhandled 'error'
    req.on('error', ignore);
    res.on('error', ignore);
    try {
      const pending = handle(req, res);
      if (pending !== undefined && typeof (pending as Promise<unknown>).then === 'function') {
        (pending as Promise<unknown>).then(undefined, (err: unknown) => fail(res, err));
      }
    } catch (err) {
      fail(res, err);
    }
  });
  // Unparseable requests (invalid method, header too large, bad chunking): 400
  // (431 for size) and close; Node's default does the same but uncounted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy(); // the client went away: nothing to answer, nothing it did wrong
      return;
    }
    httpErrors.bad_request++;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  return new Promise((resolve, reject) => {
    const failed = (err: Error): void => reject(bindError(err, 'http', listen));
    server.once('error', failed);
    server.listen(listen.port, listen.host, () => {
      server.off('error', failed);
      // a listener error after start (EMFILE on accept, say) is logged, not thrown
      server.on('error', (err) => faults.report('http_request', err));
      resolve(server);
    });
  });
}
