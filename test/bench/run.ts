// `npm run bench`: speed and memory, side by side with dnsdist and a bare Node
// forwarder in one run, reported as ratios (issue 4). Never part of `npm test`.
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
  const ratio = (a?: TargetResult, b?: TargetResult): string => (a && b ? (median(a.qps) / median(b.qps)).toFixed(2) : 'n/a');
  const many = results.find((r) => /^ampguard-\d+w$/.test(r.name) && r.name !== 'ampguard-1w');
  console.log('\nratios (qps, medians of this run):');
  console.log(`  ampguard-1w / bare-node = ${ratio(by('ampguard-1w'), by('bare-node'))}   (target >= 0.9)`);
  console.log(`  ampguard-1w / dnsdist   = ${ratio(by('ampguard-1w'), by('dnsdist'))}`);
  if (many) {
    console.log(`  ${many.name} / dnsdist   = ${ratio(many, by('dnsdist'))}`);
    console.log(`  ${many.name} / ampguard-1w = ${ratio(many, by('ampguard-1w'))}`);
  }
  console.log(`  bare-node / dnsdist     = ${ratio(by('bare-node'), by('dnsdist'))}`);
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
