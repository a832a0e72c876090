// HTTP garbage on the metrics listener of a running ampguard, written on raw
// sockets: request targets `new URL` cannot read, absolute-form, invalid
// methods, oversized headers, control bytes, not HTTP at all. Each gets a 4xx, the process lives, /metrics still
// answers and ampguard_http_errors_total{reason="bad_request"} counts them.
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { hostileTarget } from '../helpers/hostile-target.js';

const target = hostileTarget();

/** Writes `raw`, returns the status of the first response line, or 0 if the connection closed (or 3 s passed) without one. */
function rawStatus(raw: string | Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(target.ag.metricsPort, '127.0.0.1');
    let got = '';
    const done = (status: number): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(0), 3000);
    socket.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (m) done(Number(m[1]));
    });
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
    socket.write(raw);
  });
}

const metric = (name: string): Promise<number> => target.ag.metric(name).then((v) => (Number.isNaN(v) ? 0 : v));

describe('HTTP garbage on metrics.listen', () => {
  const cases: [what: string, raw: string, status: number][] = [
    ['GET //', 'GET // HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['GET //x/y', 'GET //x/y HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['an absolute URL that does not parse', 'GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['authority-form', 'GET example.test:80 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['asterisk-form', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['an invalid method', 'FROB /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a method that is not a token', 'G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['huge headers', `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431],
    ['a control byte in the target', 'GET /met\x01rics HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['not HTTP at all', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 400],
  ];
  for (const [what, raw, status] of cases) {
    it(`answers ${what} with ${status} and lives`, async () => {
      const before = await metric('ampguard_http_errors_total{reason="bad_request"}');
      expect(await rawStatus(raw)).toBe(status);
      expect(target.alive()).toBe(true);
      expect(await rawStatus('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(200);
      expect(await metric('ampguard_http_errors_total{reason="bad_request"}')).toBe(before + 1);
    });
  }

  it('serves an absolute-form target that parses (a server must accept it)', async () => {
    expect(await rawStatus('GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n')).toBe(200);
  });

  it('never needed the barrier for any of it', async () => {
    expect(await metric('ampguard_http_errors_total{reason="internal_error"}')).toBe(0);
  });
});
