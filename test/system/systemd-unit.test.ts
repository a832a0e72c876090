// The shipped unit (deploy/systemd/ampguard.service) started by a real systemd
// as PID 1: a machine of the test's own (test/helpers/machine.ts: systemd-nspawn,
// a tmpfs root with the host's /usr, in the test's server namespace next to a
// real pdns_recursor), the package installed as `npm install -g` puts it
// (/usr/local), and the operator's steps of docs/operations.md run in it as
// written: useradd, cp of the packaged unit, `systemctl enable --now`. What
// test/system/syscalls.test.ts cannot show without systemd is asserted here:
// ExecStartPre's check-config, Type=notify reaching active (running), User=,
// the capability sets, NoNewPrivileges and seccomp as systemd applies them, the
// RuntimeDirectory and the token in it, ProtectSystem=strict and PrivateTmp in
// the service's mount namespace, ExecReload (SIGHUP) and a clean stop. The
// host is checked untouched afterwards (its sysctls, a file in its /tmp).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { startRecursor } from '../helpers/recursor.js';
import { installPackage, type Installed } from '../helpers/package.js';
import { stopAll } from '../helpers/process.js';
import { blast, until } from '../helpers/blast.js';
import { dig } from '../helpers/dig.js';
import { poll } from '../helpers/poll.js';
import { bootMachine, machineUnavailable, type Machine } from '../helpers/machine.js';

/** AMPGUARD_UNIT=path: the unit file the operator copies, instead of the packaged one (to see the test fail on a broken unit) */
const UNIT_OVERRIDE = process.env.AMPGUARD_UNIT ? resolve(process.env.AMPGUARD_UNIT) : null;
const PACKAGED_UNIT = '/usr/local/lib/node_modules/ampguard/deploy/systemd/ampguard.service';
const CONFIG = '/etc/ampguard/ampguard.yaml';
/** what docs/operations.md promises the unit grants, and nothing more */
const CAPS = ['cap_net_admin', 'cap_net_bind_service', 'cap_net_raw'];
/** the services a machine with nothing enabled runs anyway (static in /usr/lib/systemd/system), and ours */
const STATIC_SERVICES = ['console-getty.service', 'dbus.service', 'systemd-journald.service', 'systemd-logind.service'];
/** host sysctls a systemd booted on the host's root once changed */
const SYSCTLS = ['fs.protected_regular', 'fs.protected_fifos', 'fs.protected_symlinks', 'fs.protected_hardlinks', 'kernel.pid_max', 'net.ipv4.ip_forward'];

/** linux/capability.h, by bit */
const CAP_NAMES = ['chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'linux_immutable',
  'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner', 'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace',
  'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice', 'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write',
  'audit_control', 'setfcap', 'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore'];

export function decodeCaps(hex: string): string[] {
  const v = BigInt(`0x${hex}`);
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) if ((v >> BigInt(bit)) & 1n) out.push(`cap_${CAP_NAMES[bit] ?? String(bit)}`);
  return out.sort();
}

function sysctls(): Record<string, string> {
  return Object.fromEntries(SYSCTLS.map((k) => [k, spawnSync('sysctl', ['-n', k], { encoding: 'utf8' }).stdout.trim()]));
}

const unavailable = kernelUnavailable() ?? machineUnavailable();
if (unavailable !== null) console.log(`test/system/systemd-unit.test.ts skipped: ${unavailable}`);

let hosts: Hosts | undefined;
let installed: Installed | undefined;
let machine: Machine | undefined;
let work = '';
const sentinel = join(tmpdir(), `ampguard-systemd-sentinel-${process.pid}`);
const before = { sysctls: sysctls() };

/** a command in the machine that must succeed: its output */
function inMachine(script: string, timeoutMs = 60_000): string {
  const r = (machine as Machine).sh(script, timeoutMs);
  if (r.status !== 0) throw new Error(`in the machine, \`${script}\` exited ${r.status}:\n${r.out}`);
  return r.out;
}

function show(prop: string): string {
  return inMachine(`systemctl show -p ${prop} --value ampguard`).trim();
}

function journal(): string {
  return (machine as Machine).sh('journalctl -u ampguard -o cat --no-pager').out;
}

/** /proc/PID/status of every process in the unit's cgroup (the primary and its workers), as the machine sees them */
function unitProcesses(): Map<string, string> {
  const cg = show('ControlGroup');
  const pids = inMachine(`cat /sys/fs/cgroup/unified${cg}/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup${cg}/cgroup.procs`).trim().split(/\s+/).filter((p) => p !== '');
  return new Map(pids.map((p) => [p, inMachine(`cat /proc/${p}/status`)]));
}

function field(status: string, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
}

afterAll(async () => {
  let shutdownError: unknown = null;
  try {
    await machine?.shutdown();
  } catch (err) {
    shutdownError = err;
  }
  await stopAll();
  hosts?.destroy();
  installed?.remove();
  if (work !== '') rmSync(work, { recursive: true, force: true });
  if (unavailable !== null) return;
  // the host untouched: its sysctls, and an old file in its /tmp (what an age-based cleaner would take)
  const sentinelKept = existsSync(sentinel);
  rmSync(sentinel, { force: true });
  if (shutdownError) throw shutdownError;
  // one assertion, so that a changed sysctl and a lost file are both named
  expect({ sysctls: sysctls(), [`${sentinel} kept`]: sentinelKept }, 'the host as the test found it').toEqual({ sysctls: before.sysctls, [`${sentinel} kept`]: true });
}, 120_000);

describe.skipIf(unavailable !== null)('the shipped unit under systemd as PID 1 (systemd-nspawn)', () => {
  let uid = '';

  beforeAll(async () => {
    writeFileSync(sentinel, 'ampguard systemd-unit test: must outlive the machine\n');
    const monthAgo = Date.now() / 1000 - 30 * 86400;
    utimesSync(sentinel, monthAgo, monthAgo);
    work = mkdtempSync(join(tmpdir(), 'ampguard-systemd-'));
    chmodSync(work, 0o755);

    hosts = createHosts();
    const h = hosts;
    // PROXY v2 to the recursor, which takes it only from ampguard
    const rec = await startRecursor({ netns: h.server, port: 5300, settings: { 'proxy-protocol-from': '127.0.0.1' } });

    // the package as `npm install -g` puts it; the machine sees the prefix as /usr/local, and this node as /usr/local/bin/node
    installed = installPackage();
    writeFileSync(join(installed.prefix, 'bin', 'node'), '');
    const etc = join(work, 'etc-ampguard');
    mkdirSync(etc, { mode: 0o755 });
    chmodSync(etc, 0o755);
    writeFileSync(join(etc, 'ampguard.yaml'), stringify({
      listen: { udp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`], tcp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`] },
      backends: [{ address: `127.0.0.1:${rec.port}`, proxy_protocol: true }],
      health_check: { qname: 'example.test', qtype: 'SOA' },
      metrics: { listen: '127.0.0.1:9153' },
      log: { level: 'info' },
      workers: 2,
      block: { mode: 'ipset', set: 'sysd' },
      policy: { ladder: { enabled: false } },
    }), { mode: 0o644 });
    const binds: [string, string][] = [
      [installed.prefix, '/usr/local'],
      [realpathSync(process.execPath), '/usr/local/bin/node'],
      [etc, '/etc/ampguard'],
    ];
    if (UNIT_OVERRIDE) binds.push([UNIT_OVERRIDE, '/srv/ampguard.service']);
    machine = await bootMachine({ name: `ag-${process.pid}`, dir: work, netns: h.server, binds });
    const m = machine;
    // booted: `running`, or `degraded` (named by the next test)
    const state = await poll(() => m.exec(['systemctl', 'is-system-running']).out.trim(), (s) => s === 'running' || s === 'degraded', 90_000, 250);
    expect(state, m.proc.output().slice(-3000)).toMatch(/^(running|degraded)$/);
  }, 300_000);

  it('boots nothing of the host: no unit enabled, only the static services run, no unit failed', () => {
    expect(inMachine('systemctl list-unit-files --state=enabled --no-legend; true').trim()).toBe('');
    const running = inMachine('systemctl list-units --type=service --state=running --no-legend --plain').trim().split('\n').map((l) => l.split(/\s+/)[0]).filter((u) => u);
    expect(running.filter((u) => !STATIC_SERVICES.includes(u as string))).toEqual([]);
    expect(inMachine('systemctl list-units --state=failed --no-legend --plain').trim()).toBe('');
    // the host's enabled services are not even loaded
    const hostWants = existsSync('/etc/systemd/system/multi-user.target.wants') ? readdirSync('/etc/systemd/system/multi-user.target.wants') : [];
    for (const u of hostWants.filter((u) => u.endsWith('.service'))) expect(inMachine(`systemctl is-active ${u} || true`).trim(), u).not.toBe('active');
    // its /usr is writable by its root (an overlay: the host's is untouched), so ProtectSystem= is what a read-only /usr below proves
    inMachine('touch /usr/ampguard-probe && rm /usr/ampguard-probe');
  });

  it('installs as docs/operations.md says and reaches active (running) after ExecStartPre check-config', () => {
    const source = UNIT_OVERRIDE ? '/srv/ampguard.service' : PACKAGED_UNIT;
    if (!UNIT_OVERRIDE) expect(inMachine(`cat ${PACKAGED_UNIT}`)).toBe(readFileSync('deploy/systemd/ampguard.service', 'utf8'));
    inMachine('useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ampguard');
    uid = inMachine('id -u ampguard').trim();
    const enable = (machine as Machine).sh(`mkdir -p /etc/systemd/system && cp ${source} /etc/systemd/system/ampguard.service && systemctl daemon-reload && systemctl enable --now ampguard`, 120_000);
    expect(enable.status, `${enable.out}\n${journal()}`).toBe(0);
    expect(`${show('ActiveState')} ${show('SubState')}`, journal()).toBe('active running');
    // ExecStartPre ran check-config on the config and it passed (its "ok" line is in the unit's journal)
    expect(show('ExecStartPre')).toContain(`check-config --config ${CONFIG}`);
    expect(journal()).toContain(`${CONFIG}: ok`);
    expect(journal()).toMatch(/"msg":"ampguard started"/);
  }, 180_000);

  it('runs every process as User=ampguard with only the three capabilities, no new privileges and the unit\'s seccomp filters', () => {
    const procs = unitProcesses();
    // nspawn filters every process of the machine (its PID 1 too): the unit's filters are the ones stacked on top of that
    const machineFilters = Number(field(inMachine('cat /proc/1/status'), 'Seccomp_filters'));
    // the primary and its two workers
    expect(procs.size).toBeGreaterThanOrEqual(3);
    for (const [pid, status] of procs) {
      // soft: one run names every field that is wrong
      expect.soft(field(status, 'Uid').split(/\s+/), `pid ${pid} Uid`).toEqual([uid, uid, uid, uid]);
      for (const set of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb']) expect.soft(decodeCaps(field(status, set)), `pid ${pid} ${set}`).toEqual(CAPS);
      expect.soft(field(status, 'NoNewPrivs'), `pid ${pid} NoNewPrivs`).toBe('1');
      expect.soft(field(status, 'Seccomp'), `pid ${pid} Seccomp`).toBe('2');
      expect.soft(Number(field(status, 'Seccomp_filters')), `pid ${pid} Seccomp_filters (the machine's: ${machineFilters})`).toBeGreaterThan(machineFilters);
    }
  });

  it('serves UDP and TCP through the recursor', async () => {
    const h = hosts as Hosts;
    const client = CLIENTS_V4[1] as string;
    const udp = await dig(SERVER_V4, 53, 'example.test', 'SOA', ['-b', client], h.client);
    expect(udp.status, udp.raw).toBe('NOERROR');
    expect(udp.transport).toBe('UDP');
    const tcp = await dig(SERVER_V4, 53, 'example.test', 'SOA', ['-b', client, '+tcp'], h.client);
    expect(tcp.status, tcp.raw).toBe('NOERROR');
    expect(tcp.transport).toBe('TCP');
  });

  it('makes the token in its RuntimeDirectory, which root\'s CLI in the machine uses to list and unblock', async () => {
    const h = hosts as Hosts;
    expect(inMachine('stat -c "%U %G %a" /run/ampguard /run/ampguard/token').trim().split('\n')).toEqual(['ampguard ampguard 700', 'ampguard ampguard 600']);
    expect(journal()).toContain('"token_file":"/run/ampguard/token"');
    // a flooder goes into the kernel set (the machine's network namespace is the server's)
    const flooder = CLIENTS_V4[0] as string;
    blast(h, SERVER_V4, flooder, 40);
    expect(await until(() => h.run(h.server, 'ipset', ['list', 'sysd']).includes(flooder), 10_000)).toBe(true);
    const list = inMachine(`ampguard blocks list --config ${CONFIG}`);
    expect(list).toContain(flooder);
    const del = (machine as Machine).sh(`ampguard blocks del ${flooder} --config ${CONFIG}`);
    expect(del.status, del.out).toBe(0);
    expect(del.out).toMatch(/^unblocked /m);
    expect(await until(() => !h.run(h.server, 'ipset', ['list', 'sysd']).includes(flooder), 10_000)).toBe(true);
  });

  it('reloads on systemctl reload (SIGHUP to the running service, same process)', async () => {
    const pid = show('MainPID');
    const reloadsBefore = journal().split('"msg":"config reloaded"').length - 1;
    inMachine('systemctl reload ampguard', 60_000);
    const seen = await poll(() => journal().split('"msg":"config reloaded"').length - 1, (n) => n > reloadsBefore, 15_000);
    expect(seen, journal()).toBe(reloadsBefore + 1);
    expect(show('MainPID')).toBe(pid);
    expect(`${show('ActiveState')} ${show('SubState')}`).toBe('active running');
  });

  it('ProtectSystem=strict and PrivateTmp hold in its mount namespace: /usr and /etc read-only, /tmp its own, its runtime directory writable', () => {
    const pid = show('MainPID');
    // root in the service's mount namespace (the machine's own root may write /usr and /etc: see the first test)
    const inService = (cmd: string): { status: number; out: string } => (machine as Machine).sh(`nsenter -t ${pid} -m sh -c '${cmd}'`);
    for (const path of ['/usr/ampguard-probe', '/etc/ampguard-probe']) {
      const r = inService(`touch ${path}`);
      expect(r.status, `${path}: ${r.out}`).not.toBe(0);
      expect(r.out).toMatch(/Read-only file system/);
    }
    inMachine('touch /etc/ampguard-probe && rm /etc/ampguard-probe');
    const rt = inService('touch /run/ampguard/probe && rm /run/ampguard/probe');
    expect(rt.status, rt.out).toBe(0);
    // PrivateTmp: what the service writes to /tmp is not in the machine's /tmp
    const tmp = inService('touch /tmp/ampguard-private-probe');
    expect(tmp.status, tmp.out).toBe(0);
    expect(inMachine('ls /tmp').split('\n')).not.toContain('ampguard-private-probe');
  });

  it('stops cleanly on systemctl stop: exit 0, no SIGKILL, the runtime directory and token removed', () => {
    inMachine('systemctl stop ampguard', 90_000);
    expect(show('ActiveState')).toBe('inactive');
    expect(show('Result')).toBe('success');
    expect(show('ExecMainStatus')).toBe('0');
    expect(journal()).not.toMatch(/SIGKILL|Killing process/);
    expect(journal()).toMatch(/Deactivated successfully/);
    expect((machine as Machine).sh('test -e /run/ampguard').status).not.toBe(0);
  }, 120_000);
});
