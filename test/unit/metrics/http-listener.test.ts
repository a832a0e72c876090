// The HTTP fault barrier in-process: a route that throws, one whose promise
// rejects, one that throws after the headers went out; and the request-target
// parser on every shape of target.
import { afterEach, describe, expect, it } from 'vitest';
import type http from 'node:http';
import { parseTarget, startHttpListener } from '../../../src/metrics/http-listener.js';
import { httpErrors } from '../../../src/metrics/http-errors.js';

let server: http.Server | null = null;
afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  server?.closeAllConnections();
  server = null;
});

describe('parseTarget', () => {
  it('reads origin-form and parseable absolute-form, refuses the rest without throwing', () => {
    expect(parseTarget('/metrics')).toMatchObject({ path: '/metrics' });
    expect(parseTarget('/api/top?n=5')?.query.get('n')).toBe('5');
    expect(parseTarget('http://h/api/top?n=3')).toMatchObject({ path: '/api/top' });
    for (const bad of ['', '//', '//x', 'http://[', 'https://[::1', '*', 'example:80', 'metrics', '/a b', '/\x00', undefined, `/${'a'.repeat(5000)}`]) {
      expect(parseTarget(bad), String(bad)).toBeNull();
    }
  });
});

describe('startHttpListener', () => {
  it('answers 500 for a route that throws or rejects, counts it, logs once a second, and keeps serving', async () => {
    const logged: object[] = [];
    server = await startHttpListener({ host: '127.0.0.1', port: 0, family: 4 }, {
      registry: { contentType: 'text/plain', metrics: async () => 'm 1\n' },
      health: () => {
        throw new Error('health exploded');
      },
      routes: {
        '/throws': () => {
          throw new Error('route exploded');
        },
        '/rejects': () => Promise.reject(new Error('promise exploded')),
        '/late': (_req, res) => {
          res.writeHead(200);
          res.write('partial');
          throw new Error('after headers');
        },
      },
      errorLog: { error: (o) => logged.push(o) },
    });
    const port = (server.address() as { port: number }).port;
    const before = httpErrors.internal_error;
    const get = (path: string): Promise<number> => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status, () => 0);
    expect(await get('/throws')).toBe(500);
    expect(await get('/rejects')).toBe(500);
    expect([0, 200]).toContain(await get('/late')); // headers may have gone out: the connection is cut instead
    expect(await get('/healthz')).toBe(503);
    expect(await get('/metrics')).toBe(200);
    expect(httpErrors.internal_error - before).toBe(3);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ unit: 'http_request', err: 'route exploded', suppressed: 0 });
  });
});
