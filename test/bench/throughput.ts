// Throughput scenario: one pdns_recursor (packet cache on), and in front of it
// the bare Node forwarder, ampguard with 1 and N workers in each UDP I/O mode, and
// dnsdist with 1 and N listeners when installed; dnsperf against each in interleaved repeats.
// With nats-server installed, also ampguard (native, 1 and N workers) with `fleet`
// on (docs/fleet.md, "Cost when fleet is on"): a nats-server of the benchmark's
// own and, per target, a second ampguard node of the same site that stays idle
// but receives the target's evidence; their CPU is counted apart ("side").
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import { startRecursor } from '../helpers/recursor.js';
import { startProc, stopAll, type Proc } from '../helpers/process.js';
import { freePort } from '../helpers/ports.js';
import { startNats, writeSiteKey } from '../helpers/nats.js';
import { cpuMicros, dnsperf, median, percentile, stealShare, systemCpu } from './measure.js';
import { loadNative } from '../../src/native/index.js';

export interface TargetResult {
  name: string;
  qps: number[];
  cpuUsPerQuery: number[];
  /** fleet targets: what the nats-server and the peer node spent in the same seconds, per query of the target */
  sideCpuUsPerQuery: number[];
  /** fleet targets: evidence messages the peer received, per second */
  peerMsgsPerSec: number[];
  lossShare: number[];
  steal: number[];
  p50ms: number;
  p99ms: number;
}

interface Target {
  name: string;
  port: number;
  proc: Proc;
  pids(): number[];
  /** fleet targets: the nats-server's and the peer node's processes */
  side?: () => number[];
  /** fleet targets: the peer's ampguard_fleet_messages_total{direction="in"} */
  peerIn?: () => Promise<number>;
}

interface FleetSide {
  readonly url: string;
  readonly site: string;
  readonly node: string;
  readonly keyFile: string;
}

const CLI = resolve('dist/src/cli/index.js');
const BARE = resolve('dist/test/bench/bare-forwarder.js');

/** the query mix: mostly small answers, a tenth ~900-byte TXT, a few ANY */
function queryFile(dir: string): string {
  const lines: string[] = [];
  const small = ['www.example.test A', 'mail.example.test A', 'ns1.example.test A', 'example.test AAAA', 'example.test MX', 'example.test SOA', 'nope.example.test A'];
  for (let i = 0; i < 1000; i++) {
    if (i % 10 === 9) lines.push('medium.example.test TXT');
    else if (i % 100 === 50) lines.push('example.test ANY');
    else lines.push(small[i % small.length] as string);
  }
  const path = join(dir, 'queries.txt');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function startAmpguardTarget(name: string, dir: string, backendPort: number, workers: number, udpIo: 'native' | 'dgram', fleet?: FleetSide): Promise<Target & { metricsPort: number }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const config = {
    listen: { udp: [`127.0.0.1:${port}`], tcp: [`127.0.0.1:${port}`] },
    backends: [{ address: `127.0.0.1:${backendPort}` }],
    workers,
    udp_io: udpIo,
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    health_check: { qname: 'example.test', qtype: 'SOA' },
    // the whole policy runs (budgets charged), but the benchmark client is never blocked
    block: { mode: 'userspace', allowlist: ['127.0.0.0/8'] },
    log: { level: 'warn' },
    ...(fleet ? { fleet: { nats: [fleet.url], site: fleet.site, node: fleet.node, key_file: fleet.keyFile } } : {}),
  };
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(config));
  const proc = startProc('node', [CLI, 'run', '--config', path]);
  await waitUdp(port);
  const pid = proc.child.pid as number;
  return { name, port, metricsPort, proc, pids: () => [pid, ...childPids(pid)] };
}

async function metric(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.slice(name.length + 1) ?? NaN);
}

/**
 * ampguard-native-Nw-fleet: the same target with fleet on, its site's second
 * node (1 worker, never queried: it receives the target's evidence and sends
 * heartbeats), both on the benchmark's nats-server.
 */
async function startFleetTarget(dir: string, backendPort: number, workers: number, nats: { url: string; pids(): number[] }, keyFile: string): Promise<Target> {
  const name = `ampguard-native-${workers}w-fleet`;
  const site = `bench-${workers}w`;
  const peer = await startAmpguardTarget(`${name}-peer`, dir, backendPort, 1, 'native', { url: nats.url, site, node: 'peer', keyFile });
  const t = await startAmpguardTarget(name, dir, backendPort, workers, 'native', { url: nats.url, site, node: 'target', keyFile });
  // both see each other before the target is measured
  for (let i = 0; ; i++) {
    const [a, b] = await Promise.all([metric(t.metricsPort, 'ampguard_fleet_peers'), metric(peer.metricsPort, 'ampguard_fleet_peers')]);
    if (a === 1 && b === 1) break;
    if (i >= 100) throw new Error(`${name}: the fleet nodes do not see each other (peers ${a} and ${b})`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    ...t,
    side: () => [...nats.pids(), ...peer.pids()],
    peerIn: () => metric(peer.metricsPort, 'ampguard_fleet_messages_total{direction="in"}'),
  };
}

async function startBare(backendPort: number): Promise<Target> {
  const port = await freePort();
  const proc = startProc('node', [BARE, String(port), String(backendPort)]);
  await proc.waitFor(/ready/);
  return { name: 'bare-node', port, proc, pids: () => [proc.child.pid as number] };
}

/** dnsdist with `listeners` UDP listener threads on one port (SO_REUSEPORT, as ampguard's workers) */
async function startDnsdist(dir: string, backendPort: number, listeners: number): Promise<Target | null> {
  try {
    execFileSync('sh', ['-c', 'command -v dnsdist']);
  } catch {
    return null;
  }
  const port = await freePort();
  const conf = join(dir, `dnsdist-${listeners}.conf`);
  writeFileSync(conf, [
    `setLocal('127.0.0.1:${port}', {reusePort=true})`,
    ...Array.from({ length: listeners - 1 }, () => `addLocal('127.0.0.1:${port}', {reusePort=true})`),
    `newServer({address='127.0.0.1:${backendPort}', checkName='example.test.', checkType='SOA'})`,
    // as alike ampguard as dnsdist allows: ANY gets TC, no packet cache
    'addAction(QTypeRule(DNSQType.ANY), TCAction())',
    "setSecurityPollSuffix('')",
    '',
  ].join('\n'));
  const proc = startProc('dnsdist', ['--supervised', '--disable-syslog', '-C', conf]);
  await waitUdp(port);
  return { name: `dnsdist-${listeners}l`, port, proc, pids: () => [proc.child.pid as number] };
}

async function waitUdp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await dnsperf(['-s', '127.0.0.1', '-p', String(port), '-d', resolve('test/bench/probe.txt'), '-n', '1', '-t', '1']).catch(() => null);
    if (r && r.completed > 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

export async function runThroughput(opts: { repeats: number; seconds: number; latencyQps: number; workers: number }): Promise<TargetResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-bench-'));
  try {
    // the recursor as an operator runs it: packet cache on, default threads
    const rec = await startRecursor({ settings: { 'any-to-tcp': 'yes', 'udp-truncation-threshold': '1232', threads: '2' } });
    const queries = queryFile(dir);
    const targets: Target[] = [await startBare(rec.port)];
    // each ampguard once per UDP I/O mode; native only where the addon is built
    const modes = (['native', 'dgram'] as const).filter((m) => m === 'dgram' || loadNative().binding !== null);
    const counts = opts.workers > 1 ? [1, opts.workers] : [1];
    for (const m of modes) for (const w of counts) targets.push(await startAmpguardTarget(`ampguard-${m}-${w}w`, dir, rec.port, w, m));
    for (const n of counts) {
      const dnsdist = await startDnsdist(dir, rec.port, n);
      if (dnsdist) targets.push(dnsdist);
    }
    // BENCH_TARGETS (a regular expression) narrows the run, e.g. 'native|dnsdist'
    const only = process.env.BENCH_TARGETS ? new RegExp(process.env.BENCH_TARGETS) : null;
    // fleet on: started only when asked for (its nats-server and peers would load the machine for nothing)
    const fleetCounts = counts.filter((w) => !only || only.test(`ampguard-native-${w}w-fleet`));
    if (fleetCounts.length > 0) {
      const why = !modes.includes('native') ? 'the native UDP addon is not built' : spawnSync('sh', ['-c', 'command -v nats-server']).status !== 0 ? 'nats-server is not installed (apt-get install nats-server)' : null;
      if (why) process.stderr.write(`  ampguard-native-Nw-fleet skipped: ${why}\n`);
      else {
        const nats = await startNats();
        const natsPids = (): number[] => [nats.pid()].filter((p): p is number => p !== undefined);
        const keyFile = writeSiteKey();
        for (const w of fleetCounts) targets.push(await startFleetTarget(dir, rec.port, w, { url: nats.url, pids: natsPids }, keyFile));
      }
    }
    if (only) for (const t of targets.filter((x) => !only.test(x.name))) await t.proc.stop();
    if (only) targets.splice(0, targets.length, ...targets.filter((x) => only.test(x.name)));
    // warm the recursor's packet cache
    await dnsperf(['-s', '127.0.0.1', '-p', String(targets[0]!.port), '-d', queries, '-l', '2', '-e']);

    const results = new Map<string, TargetResult>(targets.map((t) => [t.name, { name: t.name, qps: [], cpuUsPerQuery: [], sideCpuUsPerQuery: [], peerMsgsPerSec: [], lossShare: [], steal: [], p50ms: NaN, p99ms: NaN }]));
    for (let r = 0; r < opts.repeats; r++) {
      for (const t of targets) {
        const res = results.get(t.name) as TargetResult;
        const side0 = t.side ? cpuMicros(t.side()) : 0;
        const in0 = t.peerIn ? await t.peerIn() : 0;
        const cpu0 = cpuMicros(t.pids());
        const sys0 = systemCpu();
        const started = Date.now();
        const perf = await dnsperf(['-s', '127.0.0.1', '-p', String(t.port), '-d', queries, '-l', String(opts.seconds), '-e', '-c', '8', '-q', '500', '-t', '2']);
        const cpu1 = cpuMicros(t.pids());
        res.qps.push(perf.qps);
        res.cpuUsPerQuery.push((cpu1 - cpu0) / Math.max(1, perf.completed));
        if (t.side) res.sideCpuUsPerQuery.push((cpuMicros(t.side()) - side0) / Math.max(1, perf.completed));
        // the peer's counter comes from the primary at once (one worker: its own process)
        if (t.peerIn) res.peerMsgsPerSec.push(((await t.peerIn()) - in0) / ((Date.now() - started) / 1000));
        res.lossShare.push(perf.lost / Math.max(1, perf.completed + perf.lost));
        res.steal.push(stealShare(sys0, systemCpu()));
        process.stderr.write(`  repeat ${r + 1}/${opts.repeats} ${t.name}: ${Math.round(perf.qps)} qps\n`);
      }
    }
    // latency at a fixed offered rate, well under every target's maximum
    for (const t of targets) {
      const perf = await dnsperf(['-s', '127.0.0.1', '-p', String(t.port), '-d', queries, '-l', '4', '-e', '-Q', String(opts.latencyQps)], true);
      const sorted = perf.latencies.sort((a, b) => a - b);
      const res = results.get(t.name) as TargetResult;
      res.p50ms = percentile(sorted, 50) * 1000;
      res.p99ms = percentile(sorted, 99) * 1000;
    }
    return [...results.values()];
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function cpuCount(): number {
  return cpus().length;
}

export { median };
