// Flood scenario: in network namespaces, a legitimate client runs dnsperf at a
// fixed rate while a blocked source floods as fast as its sender can. Reported:
// the legitimate qps as a share of the unflooded figure, the flood packets that
// reached ampguard's socket, and ampguard's CPU, with and without the flood.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHosts, kernelUnavailable, SERVER_V4, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { startRecursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard, CLI } from '../helpers/ampguard.js';
import { stopAll } from '../helpers/process.js';
import { cpuMicros } from './measure.js';

const FLOODER = resolve('test/bench/flooder.mjs');
const [LEGIT, FLOOD] = CLIENTS_V4 as [string, string];

interface Phase {
  qps: number;
  sentFlood: number;
  reachedAmpguard: number;
  droppedByRule: number;
  cpuPercent: number;
}

function pids(ag: Ampguard): number[] {
  const primary = ag.proc.child.pid as number;
  try {
    return [primary, ...execFileSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number)];
  } catch {
    return [primary];
  }
}

function ruleDrops(h: Hosts): number {
  const out = h.run(h.server, 'iptables', ['-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n']);
  const line = out.split('\n').find((l) => l.includes('match-set throttled-ips src'));
  return Number(line?.trim().split(/\s+/)[0] ?? 0);
}

function dnsperfIn(h: Hosts, args: string[]): Promise<number> {
  return new Promise((res) => {
    const p = spawn('ip', ['netns', 'exec', h.client, 'dnsperf', ...args]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => res(Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)));
  });
}

function floodIn(h: Hosts, seconds: number): Promise<number> {
  return new Promise((res) => {
    const p = spawn('ip', ['netns', 'exec', h.client, 'node', FLOODER, SERVER_V4, '53', FLOOD, String(seconds)]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => res((JSON.parse(out || '{"sent":0}') as { sent: number }).sent));
  });
}

async function phase(h: Hosts, ag: Ampguard, queries: string, rate: number, seconds: number, flood: boolean): Promise<Phase> {
  const blocked0 = await ag.metric('ampguard_dropped_total{reason="blocked"}');
  const rule0 = ruleDrops(h);
  const cpu0 = cpuMicros(pids(ag));
  const t0 = Date.now();
  const floodRun = flood ? floodIn(h, seconds + 1) : Promise.resolve(0);
  if (flood) await new Promise((r) => setTimeout(r, 500)); // the flood is at full rate before measuring
  const qps = await dnsperfIn(h, ['-s', SERVER_V4, '-a', LEGIT, '-d', queries, '-l', String(seconds), '-Q', String(rate), '-e', '-c', '4']);
  const sentFlood = await floodRun;
  const wall = (Date.now() - t0) * 1000;
  return {
    qps,
    sentFlood,
    reachedAmpguard: (await ag.metric('ampguard_dropped_total{reason="blocked"}')) - blocked0,
    droppedByRule: ruleDrops(h) - rule0,
    cpuPercent: (100 * (cpuMicros(pids(ag)) - cpu0)) / wall,
  };
}

export async function runFlood(): Promise<void> {
  const why = kernelUnavailable();
  console.log('\n## flood: legitimate dnsperf at a fixed rate while a blocked source floods (network namespaces, ipset)');
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const hosts = createHosts();
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-flood-'));
  try {
    const rec = await startRecursor({ netns: hosts.server, port: 5300, settings: { threads: '1' } });
    const ag = await startAmpguard({
      netns: hosts.server,
      port: 53,
      config: {
        listen: { udp: [`${SERVER_V4}:53`], tcp: [`${SERVER_V4}:53`] },
        backends: [{ address: `127.0.0.1:${rec.port}` }],
        health_check: { qname: 'example.test', qtype: 'SOA' },
        block: { mode: 'ipset', timeout: 600, allowlist: [`${LEGIT}/32`] },
      },
    });
    const queries = join(dir, 'queries.txt');
    writeFileSync(queries, ['www.example.test A', 'mail.example.test A', 'example.test MX', 'medium.example.test TXT'].join('\n') + '\n');
    hosts.run(hosts.server, 'node', [CLI, 'blocks', 'add', FLOOD, '--config', ag.configPath]);
    const rate = Number(process.env.BENCH_FLOOD_QPS ?? 5000);
    const seconds = Number(process.env.BENCH_FLOOD_SECONDS ?? 6);
    const quiet = await phase(hosts, ag, queries, rate, seconds, false);
    const flooded = await phase(hosts, ag, queries, rate, seconds, true);
    console.log('\n| phase | legit qps | flood sent | flood pps | reached ampguard | dropped by raw rule | ampguard CPU |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, p] of [['no flood', quiet], ['flood', flooded]] as const) {
      console.log(`| ${name} | ${p.qps.toFixed(0)} | ${p.sentFlood} | ${(p.sentFlood / (seconds + 1)).toFixed(0)} | ${p.reachedAmpguard} | ${p.droppedByRule} | ${p.cpuPercent.toFixed(1)}% |`);
    }
    console.log(`\nlegitimate qps under flood / without = ${(flooded.qps / quiet.qps).toFixed(3)}   (target >= 0.95)`);
    console.log(`flood packets that reached ampguard's socket: ${flooded.reachedAmpguard}   (target 0)`);
  } finally {
    await stopAll();
    hosts.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
