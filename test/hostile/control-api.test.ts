// The control plane under attack: a web page in the operator's browser, a
// rebinding DNS name, a local user without the token, and odd addresses must
// not change the block set; the operator with the token file (the CLI) can.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { freePort } from '../helpers/ports.js';
import { stopAll } from '../helpers/process.js';
import { proofHeader } from '../helpers/control.js';
import { ensureToken } from '../../src/operator/token.js';

let ag: Ampguard;
let tokenFile: string;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function request(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  // auth() asks for a fresh proof of the token for exactly this request
  if (headers.authorization === PROVE) headers = { ...headers, authorization: await proofHeader(ag.metricsPort, tokenFile, method, path) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: ag.metricsPort, method, path, headers, timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const token = (): string => readFileSync(tokenFile, 'utf8').trim();
const PROVE = 'prove';
const auth = (): Record<string, string> => ({ authorization: PROVE });
const listed = async (): Promise<string[]> =>
  ((await request('GET', '/api/blocks')).body.blocks as { prefix: string }[]).map((b) => b.prefix);

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  // no backend answers: the control plane needs none
  // 127.0.0.200 is allowlisted: a block by hand of it is refused (E_REFUSED)
  ag = await startAmpguard({ config: { backends: [{ address: `127.0.0.1:${await freePort()}` }], block: { mode: 'userspace', allowlist: ['127.0.0.200/32'] } } });
  tokenFile = join(dirname(ag.configPath), 'ampguard.token');
});
afterAll(async () => {
  await ag?.stop();
  await stopAll();
});

describe('control plane', () => {
  it('creates the token file 0600 at start', () => {
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(token()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a change without a token, with a wrong token, and from a cross-site page', async () => {
    expect((await request('POST', '/api/blocks?address=127.0.0.5')).status).toBe(401);
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { authorization: 'Bearer 0123456789abcdef0123456789abcdef' })).status).toBe(401);
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { authorization: `Bearer ${token().slice(0, -1)}x` })).status).toBe(401);
    // a page on another site: refused even when the token were somehow sent along
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { ...auth(), origin: 'http://evil.example' })).status).toBe(403);
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { ...auth(), origin: 'null' })).status).toBe(403);
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { ...auth(), 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // DNS rebinding: a name of the attacker's resolving to 127.0.0.1
    expect((await request('POST', '/api/blocks?address=127.0.0.5', { ...auth(), host: `evil.example:${ag.metricsPort}` })).status).toBe(403);
    expect((await request('GET', '/api/top', { host: `evil.example:${ag.metricsPort}` })).status).toBe(403);
    expect(await listed()).not.toContain('127.0.0.5');
  });

  it('refuses to unblock without the token', async () => {
    expect((await request('POST', '/api/blocks?address=127.0.0.6', auth())).status).toBe(200);
    expect((await request('DELETE', '/api/blocks?address=127.0.0.6')).status).toBe(401);
    expect((await request('DELETE', '/api/blocks?address=127.0.0.6', { ...auth(), origin: 'http://evil.example' })).status).toBe(403);
    expect(await listed()).toContain('127.0.0.6');
    expect((await request('DELETE', '/api/blocks?address=127.0.0.6', auth())).status).toBe(200);
    expect(await listed()).not.toContain('127.0.0.6');
  });

  it('changes nothing on GET, HEAD or other methods', async () => {
    for (const method of ['GET', 'HEAD', 'PUT', 'PATCH', 'OPTIONS']) {
      const r = await request(method, '/api/blocks?address=127.0.0.7', auth());
      expect(r.status, method).not.toBe(500);
    }
    expect(await listed()).not.toContain('127.0.0.7');
  });

  it('accepts its own origin with the token', async () => {
    const own = `127.0.0.1:${ag.metricsPort}`;
    const r = await request('POST', '/api/blocks?address=127.0.0.8', { ...auth(), origin: `http://${own}`, 'sec-fetch-site': 'same-origin' });
    expect(r.status).toBe(200);
    expect(await listed()).toContain('127.0.0.8');
  });

  it('blocks an IPv4-mapped address as the IPv4 client, and refuses unspecified addresses and zone ids', async () => {
    const r = await request('POST', `/api/blocks?address=${encodeURIComponent('::ffff:127.0.0.9')}`, auth());
    expect(r.status).toBe(200);
    expect(r.body.blocked).toBe('127.0.0.9');
    const hex = await request('POST', `/api/blocks?address=${encodeURIComponent('::ffff:7f00:a')}`, auth());
    expect(hex.body.blocked).toBe('127.0.0.10');
    for (const bad of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0', 'fe80::1%lo', 'fe80::1%25lo', 'example.test', '']) {
      expect((await request('POST', `/api/blocks?address=${encodeURIComponent(bad)}`, auth())).status, bad).toBe(400);
    }
    const prefixes = await listed();
    expect(prefixes).toContain('127.0.0.9');
    expect(prefixes.filter((p) => p.includes(':'))).toEqual([]);
  });

  it('the CLI changes the block set with the token file, and fails clearly without it', async () => {
    const add = await cli(['blocks', 'add', '::ffff:127.0.0.11', '--config', ag.configPath]);
    expect(add.stderr).toBe('');
    expect(add.stdout).toContain('blocked 127.0.0.11');
    expect(await listed()).toContain('127.0.0.11');
    const del = await cli(['blocks', 'del', '127.0.0.11', '--config', ag.configPath]);
    expect(del.code).toBe(0);
    expect(await listed()).not.toContain('127.0.0.11');
    // a token file others can read is not trusted
    chmodSync(tokenFile, 0o644);
    try {
      const refused = await cli(['blocks', 'add', '127.0.0.12', '--config', ag.configPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('E_AUTH');
      expect(refused.stderr).toContain('chmod 600');
    } finally {
      chmodSync(tokenFile, 0o600);
    }
    expect(await listed()).not.toContain('127.0.0.12');
    const bad = await cli(['blocks', 'add', '::', '--config', ag.configPath]);
    expect(bad.code).toBe(2);
    expect(ag.proc.child.exitCode).toBeNull();
  });
});

describe('a block that cannot be made', () => {
  it('answers 400 with the stable code E_REFUSED, and the CLI prints that code', async () => {
    const r = await request('POST', '/api/blocks?address=127.0.0.200', auth());
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('E_REFUSED');
    expect(String(r.body.error)).toContain('block.allowlist');
    const add = await cli(['blocks', 'add', '127.0.0.200', '--config', ag.configPath]);
    expect(add.code).toBe(1);
    expect(add.stderr).toMatch(/^ampguard: E_REFUSED: not blocked: .*block\.allowlist/);
    expect(await listed()).not.toContain('127.0.0.200');
  });
});

describe('the token never leaves the CLI', () => {
  it('a replayed proof changes nothing; a bearer token is no longer taken', async () => {
    const target = '/api/blocks?address=127.0.0.13';
    const header = await proofHeader(ag.metricsPort, tokenFile, 'POST', target);
    expect((await request('POST', target, { authorization: header })).status).toBe(200);
    expect((await request('DELETE', target, auth())).status).toBe(200);
    // the same proof again, as someone who captured it on loopback would send it
    expect((await request('POST', target, { authorization: header })).status).toBe(401);
    // a proof for one request does not stand for another
    const other = await proofHeader(ag.metricsPort, tokenFile, 'POST', target);
    expect((await request('POST', '/api/blocks?address=127.0.0.14', { authorization: other })).status).toBe(401);
    expect((await request('POST', target, { authorization: `Bearer ${token()}` })).status).toBe(401);
    const now = await listed();
    expect(now).not.toContain('127.0.0.13');
    expect(now).not.toContain('127.0.0.14');
  });

  /** A local user's listener on a metrics port while ampguard is down: records every byte, answers as told. */
  async function impostor(answer: (path: string) => string): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
    let bytes = '';
    const server = net.createServer((sock) => {
      let req = '';
      sock.on('data', (d: Buffer) => {
        bytes += d.toString('latin1');
        req += d.toString('latin1');
        if (!req.includes('\r\n\r\n')) return;
        const path = /^[A-Z]+ (\S+)/.exec(req)?.[1] ?? '';
        const body = answer(path);
        sock.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        req = '';
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    return { port, received: () => bytes, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  for (const [kind, answer] of [
    // answers every request as ampguard would have before there were proofs
    ['a naive impostor', (): string => JSON.stringify({ unblocked: '127.0.0.6', blocked: '127.0.0.6' })],
    // makes up a nonce and a proof it cannot compute
    ['an impostor with a made-up proof', (): string => JSON.stringify({ nonce: 'e'.repeat(64), proof: 'f'.repeat(64), unblocked: '127.0.0.6' })],
  ] as const) {
    it(`${kind} on the metrics port gets nothing usable, and the CLI says so and fails`, async () => {
      const fake = await impostor(answer);
      const dir = mkdtempSync(join(tmpdir(), 'ampguard-impostor-'));
      try {
        // the operator's config while ampguard is down: the impostor holds its metrics port
        const config = join(dir, 'ampguard.yaml');
        writeFileSync(config, stringify({ backends: [{ address: '127.0.0.1:9' }], block: { mode: 'userspace' }, metrics: { listen: `127.0.0.1:${fake.port}`, token_file: tokenFile } }));
        const r = await cli(['blocks', 'del', '127.0.0.6', '--config', config]);
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toContain('E_AUTH');
        expect(r.stderr).toContain('could not prove it holds the token');
        expect(r.stdout).not.toContain('unblocked');
        const got = fake.received();
        expect(got).toContain('/api/challenge?client=');
        expect(got).not.toContain(token());
        expect(got.toLowerCase()).not.toContain('authorization');
        expect(got).not.toContain('/api/blocks');
      } finally {
        await fake.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a token file planted by another user is refused by the CLI and by ampguard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ampguard-planted-'));
    try {
      // a config directory anyone may write to, and a file in it that user nobody made
      chmodSync(dir, 0o1777);
      const planted = join(dir, 'ampguard.token');
      writeFileSync(planted, `${'9'.repeat(64)}\n`, { mode: 0o600 });
      chownSync(planted, 65534, 65534);
      const config = join(dir, 'ampguard.yaml');
      writeFileSync(config, stringify({ backends: [{ address: '127.0.0.1:9' }], block: { mode: 'userspace' }, metrics: { listen: `127.0.0.1:${ag.metricsPort}`, token_file: planted } }));
      const r = await cli(['blocks', 'add', '127.0.0.15', '--config', config]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('belongs to uid 65534');
      expect(await listed()).not.toContain('127.0.0.15');
      // ampguard does not adopt it either (what it does with the file at start: no token, every change refused)
      expect(() => ensureToken(planted)).toThrow(/belongs to uid 65534/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
