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

  it('gives the YAML line and column of a syntax error and of a bad value', async () => {
    const broken = await cli(['check-config', '--config', configFile('broken-lc.yaml', 'listen:\n  udp: ["127.0.0.1:5353"\nblock: {}\n')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/YAML: .*\(line \d+, column \d+\)/);
    const bad = await cli(['check-config', '--config', configFile('bad-lc.yaml', 'policy:\n  truncate_above: abc\n')]);
    expect(bad.stderr).toContain('policy.truncate_above: ');
    expect(bad.stderr).toContain('(line 2, column 19)');
  });

  it('catches a forward loop (a backend that is its own listen address), at check-config and at run', async () => {
    const loop = configFile('loop.yaml', 'listen:\n  udp: ["0.0.0.0:5399"]\n  tcp: ["127.0.0.1:5398"]\nbackends:\n  - address: "127.0.0.1:5399"\n');
    const r = await cli(['check-config', '--config', loop]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("backends.0.address: 127.0.0.1:5399 is ampguard's own listen address (listen.udp.0)");
    const run = await cli(['run', '--config', loop]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('E_CONFIG');
    const fine = await cli(['check-config', '--config', configFile('noloop.yaml', 'listen:\n  udp: ["127.0.0.1:5399"]\nbackends:\n  - address: "127.0.0.1:5300"\n')]);
    expect(fine.code).toBe(0);
  });

  it('warns, and still exits 0, when metrics.listen is not loopback', async () => {
    const r = await cli(['check-config', '--config', configFile('exposed.yaml', 'backends:\n  - address: "127.0.0.1:5300"\nmetrics:\n  listen: "0.0.0.0:9153"\n')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning');
    expect(r.stderr).toContain('metrics.listen: 0.0.0.0:9153 is not loopback');
    const quiet = await cli(['check-config', '--config', 'config/ampguard.yaml']);
    expect(quiet.stderr).toBe('');
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

describe('the CLI explains itself', () => {
  it('each command has its own --help with options, defaults and an example', async () => {
    for (const command of ['run', 'check-config', 'firewall', 'blocks', 'top', 'gen-config', 'replay']) {
      const r = await cli([command, '--help']);
      expect(r.code, command).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: ampguard ${command}`));
      expect(r.stdout).toContain('options:');
      expect(r.stdout).toContain(`example:\n  ampguard ${command}`);
    }
    expect((await cli(['top', '--help'])).stdout).toMatch(/--interval S +seconds between refreshes, 0\.5 to 3600 \(default: 2\)/);
    expect((await cli(['help', 'firewall'])).stdout).toContain('(default: iptables)');
  });

  it('--version, unknown commands and bad option values', async () => {
    const v = await cli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^ampguard \d+\.\d+\.\d+\n$/);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('E_USAGE: unknown command "frobnicate"');
    expect(unknown.stderr).not.toContain('--config FILE is required');
    for (const args of [
      ['top', '--interval', 'abc'], ['top', '--interval', '0.1'], ['top', '-n', 'many'], ['top', '-n', '0'],
      ['replay', '--server', 'nonsense', 'x.pcap'], ['replay', '-n', '2.5', 'x.pcap'], ['blocks', 'frob'], ['blocks', 'show', 'nonsense'],
    ]) {
      const r = await cli([...args, '--config', 'config/ampguard.yaml']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain('E_USAGE');
    }
    const opt = await cli(['top', '--frobnicate', '--config', 'config/ampguard.yaml']);
    expect(opt.code).toBe(2);
  });

  it('blocks list --json, blocks show IP (reason, level, when, bytes, expiry)', async () => {
    const ag = await startAmpguard({ config: { backends: [{ address: '127.0.0.1:9' }], block: { mode: 'userspace', timeout: 300 } } });
    cleanups.push(() => ag.stop());
    const addedAt = Date.now();
    expect((await cli(['blocks', 'add', '127.0.0.77', '--config', ag.configPath])).code).toBe(0);
    const list = await cli(['blocks', 'list', '--json', '--config', ag.configPath]);
    expect(list.code).toBe(0);
    const body = JSON.parse(list.stdout) as { total: number; blocks: { prefix: string; where: string }[] };
    expect(body.blocks.map((b) => b.prefix)).toContain('127.0.0.77');
    const show = await cli(['blocks', 'show', '127.0.0.77', '--config', ag.configPath]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('127.0.0.77: blocked as 127.0.0.77');
    expect(show.stdout).toMatch(/reason: +manual \(blocked by hand/);
    expect(show.stdout).toMatch(/level: +prefix /);
    expect(show.stdout).toMatch(/rung: +3 \(blocked\)/);
    expect(show.stdout).toMatch(/where: +userspace/);
    // block.timeout (300 s) less what has passed since the add, however slow the CLI starts were
    const expiresIn = Number(/expires: in (\d+) s/.exec(show.stdout)?.[1]);
    expect(expiresIn).toBeLessThanOrEqual(300);
    expect(expiresIn).toBeGreaterThanOrEqual(300 - Math.ceil((Date.now() - addedAt) / 1000) - 1);
    expect(show.stdout).toMatch(/when: +\d{4}-\d\d-\d\dT/);
    expect(show.stdout).toMatch(/bytes: +0 /);
    const json = JSON.parse((await cli(['blocks', 'show', '127.0.0.77', '--json', '--config', ag.configPath])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ address: '127.0.0.77', blocked: true, reason: 'manual', level: 'prefix', rung: 3, where: 'userspace', bytes: 0 });
    // the log says the same, in the same words
    expect(ag.proc.output()).toMatch(/"level":"prefix","reason":"manual","msg":"prefix blocked by hand"/);
    const not = await cli(['blocks', 'show', '127.0.0.78', '--config', ag.configPath]);
    expect(not.code).toBe(1);
    expect(not.stdout).toContain('127.0.0.78 is not blocked');
  });
});
