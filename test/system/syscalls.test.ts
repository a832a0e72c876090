// What the unit's seccomp filter, address-family list and capability bounding
// set would let ampguard do, proven without systemd as PID 1 (this machine has
// none): ampguard, as `npm install -g` installs it, runs as `nobody` with only the unit's capabilities (setpriv,
// bounding set included, no new privileges) under `strace -f`, in the mode
// users run (native UDP I/O, PROXY v2 to a real pdns_recursor, 2 workers, in a
// namespace of the test's own), in each kernel block mode (ipset, the default's
// choice as root, and nftables), through a whole service life: it
// serves UDP and TCP, blocks a flooder in the kernel set, takes a SIGHUP, an
// operator's `ampguard blocks del`, and SIGTERM. Every system call of every
// process it made (workers, and the ipset/iptables or nft it runs: seccomp filters are
// inherited across fork and execve, so the unit's filter applies to them too)
// must be in SystemCallFilter, expanded from `systemd-analyze syscall-filter`
// for the groups the unit names; every socket() family in
// RestrictAddressFamilies. ExecStartPre's `check-config` is traced the same way.
// systemd's own setup (namespaces, ProtectSystem, the RuntimeDirectory) needs
// systemd as PID 1: test/system/systemd-unit.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHosts, kernelUnavailable, SERVER_V4, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { serverConfig } from '../helpers/server-host.js';
import { startRecursor } from '../helpers/recursor.js';
import { startAmpguard } from '../helpers/ampguard.js';
import { installPackage, type Installed } from '../helpers/package.js';
import { stopAll } from '../helpers/process.js';
import { blast, until } from '../helpers/blast.js';
import { dig } from '../helpers/dig.js';
import { poll } from '../helpers/poll.js';

const UNIT = process.env.AMPGUARD_UNIT ?? 'deploy/systemd/ampguard.service';
const missing = ['strace', 'systemd-analyze', 'setpriv']
  .filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  .map((t) => `${t} is not installed`);
const unavailable = missing[0] ?? kernelUnavailable();
if (unavailable !== null) console.log(`test/system/syscalls.test.ts skipped: ${unavailable}`);

/** The values of a directive (all its lines, space-separated), in order. */
function directive(unit: string, key: string): string[] {
  return [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].flatMap((m) => (m[1] as string).trim().split(/\s+/)).filter((s) => s !== '');
}

/** Every group of `systemd-analyze syscall-filter`: name -> its members (calls and @groups). */
function syscallGroups(): Map<string, string[]> {
  const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter: ${r.stderr}`);
  const groups = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of r.stdout.split('\n')) {
    const head = /^(@[\w-]+)\s*$/.exec(line);
    if (head) groups.set(head[1] as string, (current = []));
    else if (/^\S/.test(line)) current = null; // "# Unlisted system calls ..." and the like
    else if (current && /^\s+[@\w]/.test(line)) current.push(line.trim().split(/[\s#]/)[0] as string);
  }
  return groups;
}

/**
 * The calls a SystemCallFilter= allow-list admits. systemd adds @default to
 * every allow-list, and admits execve, exit, exit_group, getrlimit,
 * rt_sigreturn, sigreturn and the time and sleep calls implicitly
 * (systemd.exec(5)); all of these are in @default.
 */
export function allowedSyscalls(unit: string, groups: Map<string, string[]>): Set<string> {
  const items = directive(unit, 'SystemCallFilter');
  if (items.some((i) => i.startsWith('~'))) throw new Error('the unit has a deny-list SystemCallFilter: this test reads allow-lists only');
  const out = new Set<string>();
  const add = (item: string, seen: Set<string>): void => {
    if (!item.startsWith('@')) return void out.add(item.replace(/:.*$/, '')); // name[:errno]
    if (seen.has(item)) return;
    seen.add(item);
    const members = groups.get(item);
    if (!members) throw new Error(`systemd-analyze does not know the group ${item}`);
    for (const m of members) add(m, seen);
  };
  for (const i of ['@default', ...items]) add(i, new Set());
  return out;
}

interface Trace {
  /** system call name -> one line that made it, for the failure message */
  calls: Map<string, string>;
  /** the first argument of every socket() and socketpair() */
  families: Map<string, string>;
  /** strace's notes of a process leaving the native ABI */
  personality: string[];
  /** the programs executed (after the wrapper's own) */
  programs: Set<string>;
}

/**
 * Reads `strace -f -o` output. The tracer's direct child runs the wrappers
 * (env, setpriv: systemd does their work itself before it applies the filter)
 * and then execs node: its lines count from that execve on.
 */
export function readTrace(text: string, entry: RegExp): Trace {
  const t: Trace = { calls: new Map(), families: new Map(), personality: [], programs: new Set() };
  const lines = text.split('\n');
  const root = /^(\d+)\s/.exec(lines[0] ?? '')?.[1];
  let started = false;
  const execs = new Map<string, string>();
  for (const line of lines) {
    const m = /^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()/.exec(line);
    if (/runs in .* mode/.test(line)) t.personality.push(line);
    if (!m) continue;
    const pid = m[1] as string;
    const name = (m[2] ?? m[3]) as string;
    if (pid === root && !started) {
      if (name === 'execve' && entry.test(line) && / = 0$/.test(line)) started = true;
      else continue;
    }
    if (!t.calls.has(name)) t.calls.set(name, line.slice(0, 200));
    // an execve of a multi-threaded process is often split: `execve("path", ... <unfinished ...>`, then `<... execve resumed>) = 0`
    const exec = /^\d+\s+execve\("([^"]+)"/.exec(line);
    if (exec) execs.set(pid, exec[1] as string);
    if (name === 'execve' && / = 0$/.test(line) && execs.has(pid)) t.programs.add(execs.get(pid) as string);
    const sock = /^\d+\s+socket(?:pair)?\((AF_\w+)/.exec(line);
    if (sock && !t.families.has(sock[1] as string)) t.families.set(sock[1] as string, line.slice(0, 200));
  }
  if (!started) throw new Error('no execve of node in the trace');
  return t;
}

/** a kernel block mode: the program it runs, and the members of its set as that program lists them */
interface KernelMode {
  readonly mode: 'ipset' | 'nftables';
  readonly tool: string;
  list(h: Hosts, set: string): string;
}
const MODES: KernelMode[] = [
  { mode: 'ipset', tool: '/ipset', list: (h, set) => h.run(h.server, 'ipset', ['list', set]) },
  { mode: 'nftables', tool: '/nft', list: (h, set) => h.run(h.server, 'nft', ['list', 'set', 'inet', 'ampguard', set]) },
];

const hostsMade: Hosts[] = [];
let installed: Installed | undefined;
const dirs: string[] = [];
/** the traced primaries still running: strace, stopped by stopAll, detaches from one rather than ending it */
const primaries = new Set<number>();

afterAll(async () => {
  for (const pid of primaries) {
    try {
      process.kill(pid, 'SIGKILL'); // its workers follow it (their IPC channel closes)
    } catch {
      // gone already
    }
  }
  await stopAll();
  for (const h of hostsMade) h.destroy();
  installed?.remove();
  // AMPGUARD_KEEP_TRACE=1 keeps the traces for a look
  if (!process.env.AMPGUARD_KEEP_TRACE) for (const d of dirs) rmSync(d, { recursive: true, force: true });
  else console.log(`traces kept in ${dirs.join(' ')}`);
});

describe.skipIf(unavailable !== null)(`${UNIT} under strace: seccomp filter, address families, capabilities`, () => {
  const unit = readFileSync(UNIT, 'utf8');

  it('reads the filter from the unit and systemd-analyze', () => {
    const allowed = allowedSyscalls(unit, syscallGroups());
    // sanity of the parse: what any Node needs is there, what no service needs is not
    for (const c of ['read', 'epoll_wait', 'clone', 'execve', 'sendmmsg', 'recvmmsg', 'socket']) expect(allowed.has(c), c).toBe(true);
    for (const c of ['reboot', 'kexec_load', 'init_module', 'mount', 'ptrace']) expect(allowed.has(c), c).toBe(false);
  });

  it.each(MODES)('block.mode $mode: needs no system call, address family or capability the unit withholds, over a whole service life', async (km) => {
    const allowed = allowedSyscalls(unit, syscallGroups());
    const families = new Set(directive(unit, 'RestrictAddressFamilies'));
    const caps = directive(unit, 'CapabilityBoundingSet');
    expect(caps.length).toBeGreaterThan(0);
    const list = caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');

    // what the unit runs: the package as `npm install -g` puts it, readable by the service user
    // wherever the checkout is (a clone under a private 0700 directory is not: CI's is)
    installed ??= installPackage();
    const CLI = installed.cli;
    const dir = mkdtempSync(join(tmpdir(), 'ampguard-strace-'));
    dirs.push(dir);
    chmodSync(dir, 0o755);
    // the unit's RuntimeDirectory: the service user's own, 0700; the token goes there
    const runtime = join(dir, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    chownSync(runtime, 65534, 65534);
    const asUnit = ['env', `RUNTIME_DIRECTORY=${runtime}`, 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
      `--inh-caps=-all,${list}`, `--ambient-caps=-all,${list}`, `--bounding-set=-all,${list}`, '--no-new-privs'];
    const traceFile = join(dir, 'run.trace');

    const h = createHosts();
    hostsMade.push(h);
    // PROXY v2 to the recursor, which takes it only from ampguard
    const rec = await startRecursor({ netns: h.server, port: 5300, settings: { 'proxy-protocol-from': '127.0.0.1' } });
    const ag = await startAmpguard({
      netns: h.server,
      port: 53,
      config: serverConfig(rec, {
        backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: true }],
        workers: 2,
        udp_io: 'native',
        block: { mode: km.mode, set: 'sysc' },
        policy: { ladder: { enabled: false } },
      }),
      wrap: ['strace', '-f', '-qq', '-s', '64', '-o', traceFile, ...asUnit],
      cli: CLI,
    });
    const out = ag.proc.output();
    expect(out).toContain(`"block_mode":"${km.mode}"`);

    // `ip netns exec` execs strace; strace's only child is node, the primary (env and setpriv exec into it)
    const tracer = ag.proc.child.pid as number;
    const primary = Number(readFileSync(`/proc/${tracer}/task/${tracer}/children`, 'utf8').trim().split(/\s+/)[0]);
    primaries.add(primary);
    expect(readFileSync(`/proc/${primary}/status`, 'utf8')).toMatch(/^Uid:\t65534\t65534/m);

    // "ampguard started" is the primary's; traced, the workers and the first health check come a while later: /healthz says when it serves
    const health = await poll(() => h.tryRun(h.server, 'curl', ['-s', `http://127.0.0.1:${ag.metricsPort}/healthz`]).out, (v) => v.trim() === 'ok', 60_000);
    expect(health.trim()).toBe('ok');

    // serve UDP and TCP (through the recursor, with PROXY v2)
    const client = CLIENTS_V4[1] as string;
    const udp = await dig(SERVER_V4, 53, 'example.test', 'SOA', ['-b', client], h.client);
    expect(udp.status, udp.raw).toBe('NOERROR');
    const tcp = await dig(SERVER_V4, 53, 'example.test', 'SOA', ['-b', client, '+tcp'], h.client);
    expect(tcp.status, tcp.raw).toBe('NOERROR');
    expect(tcp.transport).toBe('TCP');

    // a flooder goes into the kernel set
    const flooder = CLIENTS_V4[0] as string;
    blast(h, SERVER_V4, flooder, 40);
    expect(await until(() => km.list(h, 'sysc').includes(flooder), 5000)).toBe(true);

    // a reload
    process.kill(primary, 'SIGHUP');
    await ag.proc.waitFor(/"msg":"config reloaded"/, 15_000);

    // the operator's unblock through the CLI (root, outside the unit: not traced), with the token of $RUNTIME_DIRECTORY
    const del = spawnSync('ip', ['netns', 'exec', h.server, 'env', `RUNTIME_DIRECTORY=${runtime}`, 'node', CLI, 'blocks', 'del', flooder, '--config', ag.configPath],
      { encoding: 'utf8', timeout: 30_000 });
    expect(del.status, del.stdout + del.stderr).toBe(0);
    expect(del.stdout).toMatch(/^unblocked /);
    expect(await until(() => !km.list(h, 'sysc').includes(flooder), 5000)).toBe(true);

    // SIGTERM to node itself (strace would forward its own and stop tracing): the shutdown is traced too
    const exited = new Promise<number | null>((resolve) => ag.proc.child.once('exit', (code) => resolve(code)));
    process.kill(primary, 'SIGTERM');
    expect(await exited).toBe(0);
    primaries.delete(primary);

    // ExecStartPre, the same way
    const preTrace = join(dir, 'pre.trace');
    const pre = spawnSync('ip', ['netns', 'exec', h.server, 'strace', '-f', '-qq', '-o', preTrace, ...asUnit, 'node', CLI, 'check-config', '--config', ag.configPath],
      { encoding: 'utf8', timeout: 60_000 });
    expect(pre.status, pre.stdout + pre.stderr).toBe(0);

    for (const [what, file] of [['run', traceFile], ['check-config', preTrace]] as const) {
      const trace = readTrace(readFileSync(file, 'utf8'), /^\d+\s+execve\("[^"]*\/node"/);
      if (what === 'run') {
        // the workers and the kernel tools were traced, not only the primary
        expect([...trace.programs].some((p) => p.endsWith(km.tool)), [...trace.programs].join(' ')).toBe(true);
        expect(trace.calls.has('sendmmsg') || trace.calls.has('recvmmsg'), 'native UDP I/O traced').toBe(true);
      }
      const denied = [...trace.calls].filter(([name]) => !allowed.has(name));
      expect(denied.map(([name, line]) => `${name}: ${line}`), `${what}: system calls outside SystemCallFilter`).toEqual([]);
      const foreign = [...trace.families].filter(([f]) => !families.has(f));
      expect(foreign.map(([f, line]) => `${f}: ${line}`), `${what}: socket families outside RestrictAddressFamilies`).toEqual([]);
      // SystemCallArchitectures=native: no process switched ABI (strace notes it)
      expect(trace.personality, what).toEqual([]);
    }
  }, 600_000);
});
