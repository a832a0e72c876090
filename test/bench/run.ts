// `npm run bench`: speed and memory, side by side with dnsdist and a bare Node
// forwarder in one run, reported as ratios (so a faster or slower machine does
// not move them). Never part of `npm test`.
// Scenarios: throughput (default), flood, memory, replay; BENCH=throughput,flood,memory,replay
// picks; BENCH_REPEATS, BENCH_SECONDS, BENCH_WORKERS tune.
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { runThroughput, median, type TargetResult } from './throughput.js';

const env = (k: string, d: number): number => Number(process.env[k] ?? d);
const scenarios = (process.env.BENCH ?? 'throughput,flood,memory,replay').split(',');

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function machine(): string {
  const model = cpus()[0]?.model ?? 'unknown cpu';
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const versions = ['pdns_recursor --version 2>&1 | grep -o "Recursor [0-9.]*" | head -1', 'dnsdist --version 2>/dev/null | head -1 | cut -d" " -f1-2', 'dnsperf -h 2>&1 | grep Version']
    .map((c) => { try { return execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim(); } catch { return ''; } })
    .filter(Boolean);
  return `${cpus().length} x ${model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${kernel}, Node ${process.version}; ${versions.join(', ')}`;
}

function throughputReport(results: TargetResult[]): void {
  console.log('\n| target | qps median | qps min | qps max | CPU-us/query | lost | p50 ms | p99 ms | steal (max) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const stealMax = Math.max(...r.steal);
    console.log(`| ${r.name} | ${fmt(median(r.qps))} | ${fmt(Math.min(...r.qps))} | ${fmt(Math.max(...r.qps))} | ${fmt(median(r.cpuUsPerQuery), 1)} | ${fmt(100 * median(r.lossShare), 2)}% | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(100 * stealMax, 1)}%${stealMax > 0.05 ? ' SPOILED' : ''} |`);
  }
  const by = (name: string): TargetResult | undefined => results.find((r) => r.name === name);
  const cpu = (r: TargetResult): number => median(r.cpuUsPerQuery);
  const ratios = (a: string, b: string, target = ''): void => {
    const x = by(a);
    const y = by(b);
    if (!x || !y) return;
    const q = median(x.qps) / median(y.qps);
    const c = cpu(x) / cpu(y);
    console.log(`  ${`${a} / ${b}`.padEnd(42)} qps ${q.toFixed(2)}  CPU-us/query ${c.toFixed(2)}${target}`);
  };
  const n = results.map((r) => /^ampguard-native-(\d+)w$/.exec(r.name)?.[1]).find((w) => w !== undefined && w !== '1');
  console.log('\nratios (medians of this run):');
  ratios('ampguard-native-1w', 'dnsdist-1l', '   (target: qps >= 1.0, CPU <= 1.0)');
  if (n) ratios(`ampguard-native-${n}w`, `dnsdist-${n}l`, '   (target: qps >= 1.0, CPU <= 1.0)');
  ratios('ampguard-native-1w', 'ampguard-dgram-1w');
  if (n) ratios(`ampguard-native-${n}w`, `ampguard-dgram-${n}w`);
  ratios('ampguard-dgram-1w', 'bare-node', '   (target: qps >= 0.9)');
  ratios('ampguard-dgram-1w', 'dnsdist-1l');
  if (n) ratios(`ampguard-dgram-${n}w`, `dnsdist-${n}l`);
  ratios('bare-node', 'dnsdist-1l');
  fleetReport(results, by);
}

/**
 * Fleet on against fleet off (docs/fleet.md, "Cost when fleet is on"): the
 * target's own qps and CPU, and the site's cost with the nats-server's and the
 * idle peer node's CPU added, per query of the target.
 */
function fleetReport(results: TargetResult[], by: (name: string) => TargetResult | undefined): void {
  const fleet = results.filter((r) => r.name.endsWith('-fleet'));
  if (fleet.length === 0) return;
  console.log('\nfleet on (a nats-server and an idle second node of the site, CPU counted apart as "side"):');
  console.log('| target | side CPU-us/query (nats-server + peer) | evidence messages/s the peer received |');
  console.log('| --- | --- | --- |');
  for (const r of fleet) console.log(`| ${r.name} | ${fmt(median(r.sideCpuUsPerQuery), 2)} | ${fmt(median(r.peerMsgsPerSec), 1)} |`);
  console.log('\nratios fleet on / fleet off (medians of this run):');
  for (const on of fleet) {
    const off = by(on.name.replace(/-fleet$/, ''));
    if (!off) continue;
    const cpuOn = median(on.cpuUsPerQuery);
    const cpuOff = median(off.cpuUsPerQuery);
    const site = cpuOn + median(on.sideCpuUsPerQuery);
    console.log(
      `  ${`${on.name} / ${off.name}`.padEnd(50)} qps ${(median(on.qps) / median(off.qps)).toFixed(2)}  CPU-us/query ${(cpuOn / cpuOff).toFixed(2)}  with side ${(site / cpuOff).toFixed(2)}`,
    );
  }
}

function need(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
  } catch {
    console.error(`npm run bench needs ${tool}: apt-get install ${pkg}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  need('dnsperf', 'dnsperf');
  need('pdns_recursor', 'pdns-recursor');
  console.log(`ampguard benchmark, ${new Date().toISOString()}`);
  console.log(`machine: ${machine()}`);
  if (scenarios.includes('throughput')) {
    const opts = { repeats: env('BENCH_REPEATS', 5), seconds: env('BENCH_SECONDS', 8), latencyQps: env('BENCH_LATENCY_QPS', 5000), workers: env('BENCH_WORKERS', cpus().length) };
    console.log(`\n## throughput: dnsperf -e -c 8 -q 500 -l ${opts.seconds}, ${opts.repeats} interleaved repeats; latency at ${opts.latencyQps} qps`);
    throughputReport(await runThroughput(opts));
  }
  if (scenarios.includes('flood')) {
    const { runFlood } = await import('./flood.js');
    await runFlood();
  }
  if (scenarios.includes('memory')) {
    const { runMemory } = await import('./memory.js');
    await runMemory();
  }
  if (scenarios.includes('replay')) await (await import('./replay.js')).runReplayBench();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
