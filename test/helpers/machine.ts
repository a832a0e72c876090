// A machine of its own for a test that needs systemd as PID 1: systemd-nspawn
// boots the host's systemd on a tmpfs root (--volatile=yes: only the host's /usr
// is in it, so no unit of the host's /etc is enabled), inside a network
// namespace the test created. It never sees the host's /etc, /tmp or /run;
// /proc/sys outside net.* is read-only in it, so it cannot change a host sysctl.
//
// What the machine gets, and why:
// - /usr as an overlay over the host's (writes go to a directory of the test's
//   own): a real host's /usr is writable by root, so ProtectSystem= is what makes
//   it read-only for a service, not the container;
// - `disable *` as its preset policy: on a first boot (an empty /etc) systemd
//   enables every installed unit its presets name, and Debian's enable them all
//   (pdns-recursor, nats-server, ...);
// - /etc/alternatives, read-only: /usr/sbin/iptables is a link through it;
// - CAP_NET_ADMIN, which nspawn withholds by default (a host's root has it);
// - its own cgroup under the test's: nspawn puts its supervisor and payload
//   cgroups beside itself, and the test removes them afterwards.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProc, type Proc } from './process.js';
import { poll } from './poll.js';

/** the environment of commands run in the machine: none of the caller's (e.g. NODE_EXTRA_CA_CERTS naming a host file) */
const CLEAN_ENV = ['env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'SYSTEMD_PAGER=', 'SYSTEMD_COLORS=0'];

export interface MachineOptions {
  /** a name for the machine (its hostname), [a-z0-9-] */
  name: string;
  /** a directory of the test's own, for the /usr overlay and the preset policy */
  dir: string;
  /** the network namespace (a name under /run/netns) the machine runs in */
  netns: string;
  /** host path -> path in the machine, read-only */
  binds: [string, string][];
}

export interface Result {
  status: number;
  out: string;
}

export interface Machine {
  readonly proc: Proc;
  /** the machine's PID 1, as the host sees it */
  readonly leader: number;
  /** runs a command in the machine (all its namespaces, a clean environment), as its root */
  exec(argv: string[], timeoutMs?: number): Result;
  /** exec of `sh -c script` */
  sh(script: string, timeoutMs?: number): Result;
  /** powers it off (SIGTERM to nspawn: an orderly shutdown), kills what is left after the deadline, removes its cgroups */
  shutdown(timeoutMs?: number): Promise<void>;
}

/**
 * A shell that sees the host's cgroup file systems. `ip netns exec` (how tests
 * are run here) mounts a sysfs of the namespace's own on /sys, with no cgroup
 * file system under it, and nspawn needs them: the shell then runs in a mount
 * namespace of its own (unshare -m) where it mounts the hierarchies this
 * process is in (/proc/self/cgroup) where a host mounts them.
 */
function cgroupShell(script: string): string[] {
  if (/ cgroup2? /.test(readFileSync('/proc/self/mounts', 'utf8'))) return ['sh', '-c', script];
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter((l) => l !== '');
  const v1 = lines.filter((l) => !l.startsWith('0::')).map((l) => l.split(':')[1] as string);
  const mounts = v1.length === 0
    ? ['mount -t cgroup2 cgroup2 /sys/fs/cgroup']
    : ['mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup',
      ...(lines.some((l) => l.startsWith('0::')) ? ['mkdir /sys/fs/cgroup/unified', 'mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified'] : []),
      ...v1.map((c) => {
        const dir = c.replace(/^name=/, '');
        return `mkdir /sys/fs/cgroup/${dir} && mount -t cgroup -o ${c.startsWith('name=') ? `none,${c}` : c} cgroup /sys/fs/cgroup/${dir}`;
      })];
  return ['unshare', '-m', '--propagation', 'slave', 'sh', '-c', `${mounts.join(' && ')} && ${script}`];
}

/** Why a machine cannot be booted here (nspawn missing or unable to run at all), or null. */
export function machineUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (spawnSync('sh', ['-c', 'command -v systemd-nspawn']).status !== 0) return 'systemd-nspawn is not installed (Debian: apt-get install systemd-container)';
  if (!existsSync('/usr/lib/systemd/systemd')) return 'no /usr/lib/systemd/systemd to boot';
  // the smallest container nspawn can make: no boot, the same tmpfs root
  const cg = cgroupDirs(`ampguard-nspawn-probe-${process.pid}`);
  try {
    const argv = cgroupShell(`${joinCgroups(cg)} exec systemd-nspawn --quiet --volatile=yes -D / --register=no --keep-unit -M agprobe${process.pid} /usr/bin/true`);
    const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) return `systemd-nspawn cannot run here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}`;
    return null;
  } finally {
    removeCgroups(cg);
    rmSync(`/run/systemd/nspawn/propagate/agprobe${process.pid}`, { recursive: true, force: true });
  }
}

/**
 * The cgroup directories to put nspawn in, below this process's own: in the
 * cgroup2 hierarchy and in v1's name=systemd (a hybrid host's), named `name`.
 */
function cgroupDirs(name: string): string[] {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const hybrid = lines.some((l) => l.includes(':name=systemd:'));
  const out: string[] = [];
  for (const l of lines) {
    const path = l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1);
    if (l.startsWith('0::')) out.push(join(hybrid ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup', path, name));
    else if (l.includes(':name=systemd:')) out.push(join('/sys/fs/cgroup/systemd', path, name));
  }
  return out;
}

/** a shell prefix that creates the cgroups and moves the shell (and what it execs) into them */
function joinCgroups(dirs: string[]): string {
  return dirs.map((d) => `mkdir -p '${d}' && echo $$ > '${d}/cgroup.procs' &&`).join(' ');
}

/** removes the cgroups (depth first: the machine's own below them); what could not be removed */
function removeCgroups(dirs: string[]): string[] {
  const script = dirs.map((d) => `if [ -d '${d}' ]; then find '${d}' -depth -type d -exec rmdir {} + 2>&1; fi`).join('; ');
  const argv = cgroupShell(`${script}; true`);
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => l.trim() !== '');
}

export async function bootMachine(opts: MachineOptions): Promise<Machine> {
  const upper = join(opts.dir, 'usr-upper');
  const preset = join(opts.dir, 'preset');
  mkdirSync(upper, { recursive: true });
  mkdirSync(preset, { recursive: true });
  writeFileSync(join(preset, '00-ampguard-test.preset'), 'disable *\n');
  const cg = cgroupDirs(`ampguard-nspawn-${opts.name}`);
  const args = [
    'systemd-nspawn', '--volatile=yes', '-D', '/', '--boot', '--register=no', '--keep-unit', '-M', opts.name,
    `--network-namespace-path=/run/netns/${opts.netns}`, '--capability=CAP_NET_ADMIN',
    `--overlay=/usr:${upper}:/usr`, `--bind-ro=${preset}:/etc/systemd/system-preset`, '--bind-ro=/etc/alternatives',
    ...opts.binds.map(([from, to]) => `--bind-ro=${from}:${to}`),
    // the kernel command line of the machine's systemd: no first-boot questions on the console
    'systemd.unit=multi-user.target', 'systemd.firstboot=off',
  ];
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const argv = cgroupShell(`${joinCgroups(cg)} exec ${quoted}`);
  const proc = startProc(argv[0] as string, argv.slice(1));
  const nspawn = proc.child.pid as number;
  // nspawn's one child is the machine's PID 1
  const childOf = (): number => {
    try {
      const pid = Number(readFileSync(`/proc/${nspawn}/task/${nspawn}/children`, 'utf8').trim().split(/\s+/)[0]);
      return pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd' ? pid : 0;
    } catch {
      return 0;
    }
  };
  const leader = await poll(childOf, (p) => p > 0 || proc.child.exitCode !== null, 30_000);
  const exec = (argv: string[], timeoutMs = 60_000): Result => {
    const r = spawnSync('nsenter', ['-t', String(leader), '-a', '-r', '-w', ...CLEAN_ENV, ...argv], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
  };
  const machine: Machine = {
    proc,
    leader,
    exec,
    sh: (script, timeoutMs) => exec(['sh', '-c', script], timeoutMs),
    async shutdown(timeoutMs = 60_000) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
        proc.child.kill('SIGTERM');
        const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), timeoutMs).unref());
        if ((await Promise.race([exited, timer])) === 'late') {
          // SIGKILL to a PID namespace's init ends every process in it; nspawn follows
          try {
            if (leader > 0) process.kill(leader, 'SIGKILL');
          } catch {
            // gone already
          }
          await proc.stop('SIGKILL');
        }
      }
      await proc.stop();
      // nspawn's own leftovers: the propagation directory (it refuses to remove it under /run itself) and our cgroups
      rmSync(`/run/systemd/nspawn/propagate/${opts.name}`, { recursive: true, force: true });
      const left = await poll(() => removeCgroups(cg), (l) => l.length === 0, 10_000);
      if (left.length > 0) throw new Error(`cgroups left behind: ${left.join('; ')}`);
    },
  };
  if (leader === 0) {
    await machine.shutdown(5000);
    throw new Error(`systemd-nspawn started no systemd:\n${proc.output().slice(-3000)}`);
  }
  return machine;
}
