// What one kernel check costs at 100,000 members (docs/enforcement.md, "Drift"):
// run alone, as root, with `npm run build && node dist/test/bench/reconcile-cost.js`
// (RECONCILE_MEMBERS, RECONCILE_CHECKS tune). It makes a network namespace of its
// own, fills the ipset and nftables sets through the real sinks, loads them into
// an Enforcer and times its Reconciler: wall time, this process's CPU and the CPU
// of the ipset/iptables/nft processes it ran. Never part of `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { createExec, type Exec } from '../../src/enforce/exec.js';
import { IpsetSink } from '../../src/enforce/ipset.js';
import { NftablesSink } from '../../src/enforce/nftables.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import type { BlockSink, KernelEntry } from '../../src/enforce/sink.js';
import type { KernelSettings } from '../../src/kernel/settings.js';
import { compilePolicy } from '../../src/config/compile.js';
import { configSchema } from '../../src/config/schema.js';

const MEMBERS = Number(process.env.RECONCILE_MEMBERS ?? 100_000);
const CHECKS = Number(process.env.RECONCILE_CHECKS ?? 5);
const ns = `agbench-${randomBytes(3).toString('hex')}`;
const exec: Exec = (cmd, args, input) => createExec(60_000)('ip', ['netns', 'exec', ns, cmd, ...args], input);
const k: KernelSettings = { set: 'throttled-ips', set6: 'throttled-ips-v6', setNet: 'throttled-ips-net', setNet6: 'throttled-ips-net-v6', timeoutSec: 600, maxElements: 200_000, prefixV4: 32, prefixV6: 64, udpPorts: [53] };
const settings = compilePolicy(configSchema.parse({ block: { timeout: 600, max_elements: 200_000 } }));

/** CPU seconds of this process's waited-for children (ipset, iptables, nft and the `ip netns exec` around them) */
function childCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[13]) + Number(f[14])) / 100;
}

async function measure(label: string, run: () => Promise<unknown>): Promise<void> {
  const walls: number[] = [];
  const own: number[] = [];
  const kids: number[] = [];
  for (let i = 0; i < CHECKS; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const k0 = childCpu();
    await run();
    const c = process.cpuUsage(c0);
    walls.push(performance.now() - t0);
    own.push((c.user + c.system) / 1000);
    kids.push((childCpu() - k0) * 1000);
  }
  const med = (xs: number[]): string => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]?.toFixed(0) ?? 'n/a';
  console.log(`| ${label} | ${med(walls)} | ${med(own)} | ${med(kids)} |`);
}

async function bench(sink: BlockSink, dropOne: () => void): Promise<void> {
  const started = await sink.start();
  if (!started.ok) throw new Error(started.error);
  const entries: KernelEntry[] = [];
  for (let i = 0; i < MEMBERS; i++) entries.push({ prefix: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, family: 4, timeoutSec: 600 });
  const added = await sink.add(entries);
  if (!added.ok) throw new Error(added.error);
  const e = new Enforcer(sink, 200_000, () => settings, pino({ level: 'silent' }), () => performance.now());
  console.log(`${sink.mode}: ${await e.loadKernelMembers()} members loaded`);
  await measure(`${sink.mode}: a check, nothing drifted`, () => e.reconciler.checkNow());
  await measure(`${sink.mode}: a check after one member was deleted by hand (members read, one put back)`, async () => {
    dropOne();
    const r = await e.reconciler.checkNow();
    if (r !== 'repaired') throw new Error(`expected a repair, got ${r}`);
  });
}

async function main(): Promise<void> {
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    console.log(`${MEMBERS} members, median of ${CHECKS} checks; wall ms | ampguard CPU ms | kernel tools' CPU ms`);
    console.log('| check | wall ms | own CPU ms | tools CPU ms |\n| --- | --- | --- | --- |');
    await bench(new IpsetSink(k, exec), () => execFileSync('ip', ['netns', 'exec', ns, 'ipset', 'del', k.set, '10.0.0.7', '-exist']));
    await bench(new NftablesSink(k, exec), () => {
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'element', 'inet', 'ampguard', k.set, '{ 10.0.0.7 }']);
    });
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

void main();
