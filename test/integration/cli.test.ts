// The command line as an operator uses it: check-config, run with a bad file,
// SIGHUP reload of thresholds while traffic flows.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLI, startAmpguard } from '../helpers/ampguard.js';
import { startRecursor } from '../helpers/recursor.js';
import { dig } from '../helpers/dig.js';
import { stopAll } from '../helpers/process.js';
import { until } from '../helpers/blast.js';

const dir = mkdtempSync(join(tmpdir(), 'ampguard-cli-'));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await stopAll();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('check-config', () => {
  it('accepts the shipped default config', async () => {
    const r = await cli(['check-config', '--config', 'config/ampguard.yaml']);
    expect(r.stdout).toContain('ok');
    expect(r.code).toBe(0);
  });

  it('names every problem by key path and exits 1', async () => {
    const path = configFile('bad.yaml', [
      'listen:',
      '  udp: ["127.0.0.1"]',
      'backends:',
      '  - address: "[::1]:99999"',
      'policy:',
      '  truncate_above: 100',
      '  colour: blue',
      '  large_response:',
      '    rate: "50 kilobytes a minute"',
      'block:',
      '  mode: sometimes',
      '  allowlist: ["10.0.0.0/33"]',
    ].join('\n'));
    const r = await cli(['check-config', '--config', path]);
    expect(r.code).toBe(1);
    for (const key of ['listen.udp.0', 'backends.0.address', 'policy.truncate_above', 'policy.colour: unknown key', 'policy.large_response.rate', 'block.mode', 'block.allowlist.0']) {
      expect(r.stderr).toContain(key);
    }
  });

  it('reports YAML syntax errors and unreadable files', async () => {
    const broken = await cli(['check-config', '--config', configFile('broken.yaml', 'listen: [\n')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/YAML/);
    const missing = await cli(['check-config', '--config', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('E_CONFIG_READ');
  });

  it('refuses to run with a bad config, naming the key', async () => {
    const r = await cli(['run', '--config', configFile('bad-run.yaml', 'backend_timeout_ms: -5\n')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_CONFIG');
    expect(r.stderr).toContain('backend_timeout_ms');
  });
});

describe('SIGHUP', () => {
  it('applies new thresholds without a restart and keeps the config when the new file is bad', async () => {
    const rec = await startRecursor();
    cleanups.push(() => rec.close());
    const base = { backends: [{ address: `127.0.0.1:${rec.port}` }], block: { mode: 'off' } };
    const ag = await startAmpguard({ config: base });
    cleanups.push(() => ag.stop());
    const big = async (): Promise<string[]> =>
      (await dig('127.0.0.1', ag.port, 'medium.example.test', 'TXT', ['+notcp', '+ignore', '+bufsize=4096'])).flags;
    expect(await big()).not.toContain('tc');

    // traffic flows through the reload, and every query is answered
    const traffic = spawn('node', [resolve('test/helpers/traffic.mjs'), '127.0.0.1', String(ag.port), '3', '200', '127.0.0.31,127.0.0.32']);
    let out = '';
    traffic.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const trafficDone = new Promise((r) => traffic.once('exit', r));
    // reload only once the traffic is flowing
    expect(await until(async () => (await ag.metric('ampguard_queries_total{proto="udp"}')) > 100, 10_000)).toBe(true);
    ag.writeConfig({ ...base, policy: { truncate_above: 512, any_to_tcp: false } });
    ag.proc.child.kill('SIGHUP');
    await ag.proc.waitFor(/"msg":"config reloaded"/);
    await trafficDone;
    const totals = JSON.parse(out) as { sent: number; received: number };
    expect(totals.sent).toBe(600);
    expect(totals.received).toBe(totals.sent);
    expect(ag.proc.output()).toMatch(/"applied":\["policy.any_to_tcp","policy.truncate_above"\]/);
    expect(await big()).toContain('tc');
    const any = await dig('127.0.0.1', ag.port, 'example.test', 'ANY', ['+notcp', '+ignore']);
    expect(any.flags).not.toContain('tc');

    ag.writeConfig({ ...base, policy: { truncate_above: 'lots' } });
    ag.proc.child.kill('SIGHUP');
    await ag.proc.waitFor(/config reload failed/);
    expect(await big()).toContain('tc');
    expect(ag.proc.child.exitCode).toBeNull();
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
