#!/usr/bin/env node
// `npm start`: the README's tour in one command. Runs `ampguard run --config
// FILE` and, when FILE forwards to the bundled recursor of deploy/pdns-recursor
// (the address its recursor.conf listens on) and nothing listens there yet,
// starts that recursor first and stops it when ampguard stops. Kept out of
// `ampguard run` itself so that an installed ampguard never starts a daemon an
// operator did not ask for. See README.md ("A quick tour with dig").
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { packageRoot } from '../config/package-root.js';

const ROOT = packageRoot();
const RECURSOR_DIR = join(ROOT, 'deploy', 'pdns-recursor');
const CLI = fileURLToPath(new URL('./index.js', import.meta.url));

/** "IP:port" the bundled recursor listens on, read from its recursor.conf so the two cannot drift. */
function bundledAddress(conf: string): string | null {
  const get = (key: string): string | undefined => new RegExp(`^${key}=(\\S+)\\s*$`, 'm').exec(conf)?.[1];
  const address = get('local-address');
  const port = get('local-port');
  return address && port ? `${address}:${port}` : null;
}

/** true when something accepts a TCP connection on host:port within timeoutMs */
function listening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function findRecursor(): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (dir && existsSync(join(dir, 'pdns_recursor'))) return join(dir, 'pdns_recursor');
  }
  return null;
}

/** setpriv --pdeathsig makes the kernel stop a child whose parent died without cleaning up (SIGKILL). */
function withDeathSignal(argv: string[]): string[] {
  const probe = spawnSync('setpriv', ['--pdeathsig', 'TERM', 'true'], { stdio: 'ignore' });
  return probe.status === 0 ? ['setpriv', '--pdeathsig', 'TERM', ...argv] : argv;
}

function log(msg: string): void {
  process.stderr.write(`ampguard start: ${msg}\n`);
}

async function startBundledRecursor(host: string, port: number): Promise<{ child: ChildProcess; socketDir: string } | null> {
  const binary = findRecursor();
  if (!binary) {
    log(`nothing answers on ${host}:${port} and pdns_recursor is not installed (npm run setup installs it); starting ampguard anyway`);
    return null;
  }
  const socketDir = mkdtempSync(join(tmpdir(), 'ampguard-recursor-'));
  // The looser truncation threshold makes the tour's size-to-tcp ampguard's own
  // doing: with recursor.conf's 1232 the recursor would truncate first.
  const argv = withDeathSignal([binary, `--config-dir=${RECURSOR_DIR}`, `--socket-dir=${socketDir}`, '--disable-syslog', '--udp-truncation-threshold=65535']);
  // cwd: recursor.conf names its zone files relative to the package root
  const child = spawn(argv[0] as string, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', () => {
    exited = true;
  });
  const deadline = Date.now() + 15_000;
  while (!exited && Date.now() < deadline) {
    if (await listening(host, port, 200)) {
      log(`started the bundled recursor of deploy/pdns-recursor on ${host}:${port} (pid ${child.pid})`);
      return { child, socketDir };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  rmSync(socketDir, { recursive: true, force: true });
  log(`the bundled recursor did not come up on ${host}:${port}; starting ampguard anyway`);
  return null;
}

async function main(configPath: string, extra: string[]): Promise<number> {
  // An unreadable or invalid file is left to `ampguard run`, which names every problem.
  let backends: readonly string[] = [];
  try {
    const loaded = loadConfig(readFileSync(configPath, 'utf8'));
    if (loaded.ok) backends = (loaded.config.backends ?? []).map((b) => b.address);
  } catch {
    // ampguard run reports it
  }
  const bundled = bundledAddress(readFileSync(join(RECURSOR_DIR, 'recursor.conf'), 'utf8'));
  let recursor: Awaited<ReturnType<typeof startBundledRecursor>> = null;
  if (bundled && backends.includes(bundled)) {
    const i = bundled.lastIndexOf(':');
    const host = bundled.slice(0, i);
    const port = Number(bundled.slice(i + 1));
    if (!(await listening(host, port))) recursor = await startBundledRecursor(host, port);
  }

  const argv = withDeathSignal([process.execPath, CLI, 'run', '--config', configPath, ...extra]);
  const ampguard = spawn(argv[0] as string, argv.slice(1), { stdio: 'inherit' });
  // A terminal's Ctrl-C reaches every process of the group; a kill aimed at this
  // process alone is passed on, so ampguard always stops first and cleanly.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => ampguard.kill(signal));
  // npm may die of a signal without passing it on (`npm start &` then `kill %1`):
  // an orphaned start stops ampguard and the recursor rather than outliving the shell.
  const parent = process.ppid;
  const orphanWatch = setInterval(() => {
    if (process.ppid !== parent) ampguard.kill('SIGTERM');
  }, 500);
  const code = await new Promise<number>((resolve) => {
    ampguard.once('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
    ampguard.once('error', (err) => {
      log(`cannot run ampguard: ${err.message}`);
      resolve(1);
    });
  });
  clearInterval(orphanWatch);
  if (recursor) {
    const { child, socketDir } = recursor;
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(force);
    }
    rmSync(socketDir, { recursive: true, force: true });
    log('stopped the bundled recursor');
  }
  return code;
}

const [configPath, ...extra] = process.argv.slice(2);
if (import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(configPath ?? 'config/ampguard.yaml', extra).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const e = err as { code?: string; message?: string };
      process.stderr.write(`ampguard: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
