// Network blocks in the kernel, with real ipset/iptables and nftables in
// network namespaces, at the default config (docs/defence.md): a spoofed flood
// spread over 200 addresses of 198.18.2.0/24 (and over 200 /64s of
// fd00:a3b2::/48), each under its own budget, is answered with TC by its
// aggregate and never blocked; the operator's `blocks add NET/LEN` puts the
// network in the network set, the kernel's DROP rule counts UDP from any
// address inside it before ampguard sees it, an address outside is still
// answered, a restart loads the network back (listed, counted), and unblocking
// an address inside it lifts the network and says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, CLIENTS_V6, type Hosts } from '../helpers/netns.js';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { serverConfig, stopServerHost } from '../helpers/server-host.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { addSpreadNetwork } from '../helpers/spread.js';
import { dig } from '../helpers/dig.js';
import { startProc } from '../helpers/process.js';
import { blast, until } from '../helpers/blast.js';
import { settled } from '../helpers/poll.js';

const unavailable = kernelUnavailable();
if (unavailable) console.warn(`system tests skipped: ${unavailable}`);

const TRAFFIC = resolve('test/helpers/ladder-traffic.mjs');
const OUTSIDE = CLIENTS_V4[0] as string;
const OUTSIDE6 = CLIENTS_V6[0] as string;
const NET4 = '198.18.2.0/24';
/** the key the ladder names the /48 with, and how the kernel lists it */
const NET6_KEY = 'fd00:a3b2:0:0:0:0:0:0/48';
const NET6_KERNEL = 'fd00:a3b2::/48';

function vethOf(hosts: Hosts, ns: string): string {
  const line = hosts.run(ns, 'ip', ['-o', 'link', 'show', 'type', 'veth']).split('\n')[0] ?? '';
  const name = /^\d+:\s+([^@:]+)/.exec(line)?.[1];
  if (!name) throw new Error(`no veth in ${ns}: ${line}`);
  return name;
}

/** COUNT addresses of fd00:a3b2::/48 on the client, each in its own /64 (each its own budget prefix), routed from the server. */
function addSpreadNetwork6(hosts: Hosts, count: number): string[] {
  const addresses = Array.from({ length: count }, (_, i) => `fd00:a3b2:0:${(i + 1).toString(16)}::1`);
  const vc = vethOf(hosts, hosts.client);
  hosts.run(hosts.client, 'ip', ['-6', '-batch', '-'], addresses.map((a) => `addr add ${a}/64 dev ${vc} nodad\n`).join(''));
  hosts.run(hosts.server, 'ip', ['-6', 'route', 'add', 'fd00:a3b2::/48', 'dev', vethOf(hosts, hosts.server)]);
  return addresses;
}

interface Totals {
  lookups: number;
  full: number;
  tc: number;
}

async function spreadFlood(hosts: Hosts, server: string, sources: string[]): Promise<Totals> {
  // 200 queries a second over the 200 sources for 8 s: one a second from each, under its own budget
  const p = startProc('node', [TRAFFIC, 'victim', server, '53', '8', '200', sources.join(',')], { netns: hosts.client });
  if (p.child.exitCode === null) await new Promise((r) => p.child.once('exit', r));
  const line = p.output().trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Totals;
  } catch {
    throw new Error(`spread flood failed: ${p.output().slice(-2000)}`);
  }
}

async function apiBlocks(hosts: Hosts, ag: Ampguard): Promise<{ total: number; blocks: { prefix: string; where: string }[] }> {
  return JSON.parse(hosts.run(hosts.server, 'curl', ['-s', `http://127.0.0.1:${ag.metricsPort}/api/blocks`])) as { total: number; blocks: { prefix: string; where: string }[] };
}

/** The kernel of one mode, as the test reads it. */
interface Kernel {
  readonly mode: 'ipset' | 'nftables';
  members(family: 4 | 6): string;
  dropped(family: 4 | 6): number;
}

function ipsetKernel(hosts: Hosts): Kernel {
  return {
    mode: 'ipset',
    members: (family) => hosts.run(hosts.server, 'ipset', ['list', family === 4 ? 'throttled-ips-net' : 'throttled-ips-net-v6']),
    dropped(family) {
      const set = family === 4 ? 'throttled-ips-net' : 'throttled-ips-net-v6';
      const out = hosts.run(hosts.server, family === 4 ? 'iptables' : 'ip6tables', ['-w', '-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n']);
      const line = out.split('\n').find((l) => l.includes(`match-set ${set} src`) && l.includes('DROP'));
      return Number(line?.trim().split(/\s+/)[0] ?? NaN);
    },
  };
}

function nftKernel(hosts: Hosts): Kernel {
  return {
    mode: 'nftables',
    members: (family) => hosts.run(hosts.server, 'nft', ['list', 'set', 'inet', 'ampguard', family === 4 ? 'throttled-ips-net' : 'throttled-ips-net-v6']),
    dropped(family) {
      const chain = hosts.run(hosts.server, 'nft', ['list', 'chain', 'inet', 'ampguard', 'prerouting']);
      const line = chain.split('\n').find((l) => l.includes(`${family === 4 ? 'ip' : 'ip6'} saddr @throttled-ips-net`) && l.includes('drop'));
      return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? NaN);
    },
  };
}

function suite(mode: 'ipset' | 'nftables', families: readonly (4 | 6)[]): void {
  describe.skipIf(unavailable !== null)(`aggregate blocks in the kernel (${mode})`, () => {
    let hosts: Hosts;
    let rec: Recursor;
    let ag: Ampguard | null = null;
    let kernel: Kernel;
    let spread4: string[];
    let spread6: string[];
    const config = (): Record<string, unknown> => serverConfig(rec, { block: { mode } });

    beforeAll(async () => {
      hosts = createHosts();
      kernel = mode === 'ipset' ? ipsetKernel(hosts) : nftKernel(hosts);
      spread4 = addSpreadNetwork(hosts, '198.18.2', 200);
      spread6 = families.includes(6) ? addSpreadNetwork6(hosts, 200) : [];
      rec = await startRecursor({ netns: hosts.server, port: 5300 });
      ag = await startAmpguard({ netns: hosts.server, port: 53, config: config() });
    });

    afterAll(() => stopServerHost({ ag, rec, hosts }));

    it('truncates a flood spread over 198.18.2.0/24 and never blocks it; `blocks add NET/LEN` drops every address in it in the kernel, one outside answered', async () => {
      const running = ag as Ampguard;
      const flood = await spreadFlood(hosts, SERVER_V4, spread4);
      expect(flood.tc).toBeGreaterThan(0); // rung 2 of the aggregate
      expect(kernel.members(4)).not.toContain(NET4);
      expect(running.proc.output()).not.toMatch(/"msg":"prefix blocked"/);
      expect(hosts.run(hosts.server, 'node', [CLI, 'blocks', 'add', NET4, '--config', running.configPath])).toMatch(/^blocked 198\.18\.2\.0\/24$/m);
      expect(await until(() => kernel.members(4).includes(NET4), 5000)).toBe(true);
      expect((await apiBlocks(hosts, running)).blocks.map((b) => `${b.prefix} ${b.where}`)).toContain(`${NET4} ${mode}`);
      const before = kernel.dropped(4);
      const queriesBefore = await settled(() => running.metric('ampguard_queries_total{proto="udp"}'));
      // two addresses of the /24, one early and one late in the list
      for (const src of [spread4[6] as string, spread4[198] as string]) expect(blast(hosts, SERVER_V4, src, 5, 'www.example.test').received).toBe(0);
      expect(kernel.dropped(4) - before).toBe(10);
      // dropped before ampguard's socket: it saw none of them
      expect(await running.metric('ampguard_queries_total{proto="udp"}')).toBe(queriesBefore);
      expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', OUTSIDE], hosts.client)).status).toBe('NOERROR');
      // a network only at the aggregate length
      expect(hosts.tryRun(hosts.server, 'node', [CLI, 'blocks', 'add', '198.18.0.0/16', '--config', running.configPath]).status).not.toBe(0);
    }, 40_000);

    it.skipIf(!families.includes(6))('truncates a flood spread over 200 /64s of fd00:a3b2::/48; `blocks add` drops the /48; an address outside still answered', async () => {
      const running = ag as Ampguard;
      const flood = await spreadFlood(hosts, SERVER_V6, spread6);
      expect(flood.tc).toBeGreaterThan(0);
      expect(kernel.members(6)).not.toContain(NET6_KERNEL);
      hosts.run(hosts.server, 'node', [CLI, 'blocks', 'add', NET6_KERNEL, '--config', running.configPath]);
      expect(await until(() => kernel.members(6).includes(NET6_KERNEL), 5000)).toBe(true);
      expect((await apiBlocks(hosts, running)).blocks.map((b) => `${b.prefix} ${b.where}`)).toContain(`${NET6_KEY} ${mode}`);
      const before = kernel.dropped(6);
      for (const src of [spread6[3] as string, spread6[150] as string]) expect(blast(hosts, SERVER_V6, src, 5, 'www.example.test').received).toBe(0);
      expect(kernel.dropped(6) - before).toBe(10);
      expect((await dig(SERVER_V6, 53, 'www.example.test', 'A', ['+notcp', '-b', OUTSIDE6], hosts.client)).status).toBe('NOERROR');
    }, 40_000);

    it('loads the networks back at a restart: listed by the kernel while stopped, then by the API, counted, still dropped', async () => {
      await ag?.proc.stop();
      const stopped = hosts.run(hosts.server, 'node', [CLI, 'blocks', 'list', '--config', (ag as Ampguard).configPath]);
      expect(stopped).toContain('ampguard not running');
      expect(stopped).toMatch(/^198\.18\.2\.0\/24\texpires in \d+s\t/m);
      ag = await startAmpguard({ netns: hosts.server, port: 53, config: config() });
      const networks = families.length;
      expect(ag.proc.output()).toMatch(new RegExp(`"blocks_loaded":${networks}\\b`));
      const listed = (await apiBlocks(hosts, ag)).blocks.map((b) => `${b.prefix} ${b.where}`).sort();
      expect(listed).toEqual([`${NET4} ${mode}`, ...(networks === 2 ? [`${NET6_KEY} ${mode}`] : [])].sort());
      expect(await ag.metric('ampguard_blocked_clients')).toBe(networks);
      const cli = hosts.run(hosts.server, 'node', [CLI, 'blocks', 'list', '--config', ag.configPath]);
      expect(cli).toMatch(new RegExp(`^198\\.18\\.2\\.0/24\\texpires in \\d+s\\t${mode}$`, 'm'));
      const before = kernel.dropped(4);
      expect(blast(hosts, SERVER_V4, spread4[50] as string, 5, 'www.example.test').received).toBe(0);
      expect(kernel.dropped(4) - before).toBe(5);
    }, 40_000);

    it('unblocks a network by hand: `blocks del` of an address inside it lifts the network and says so; `blocks del NET/LEN` clears the API, the metric and the kernel set', async () => {
      const running = ag as Ampguard;
      expect(hosts.run(hosts.server, 'node', [CLI, 'blocks', 'del', spread4[9] as string, '--config', running.configPath])).toMatch(
        /^unblocked 198\.18\.2\.10 and the network 198\.18\.2\.0\/24 that held it$/m,
      );
      expect(kernel.members(4)).not.toContain('198.18.2.0/24');
      hosts.run(hosts.server, 'node', [CLI, 'blocks', 'add', NET4, '--config', running.configPath]);
      expect(await until(() => kernel.members(4).includes(NET4), 5000)).toBe(true);
      expect(hosts.run(hosts.server, 'node', [CLI, 'blocks', 'del', NET4, '--config', running.configPath])).toMatch(/^unblocked 198\.18\.2\.0\/24$/m);
      expect((await apiBlocks(hosts, running)).blocks.map((b) => b.prefix)).not.toContain(NET4);
      expect(kernel.members(4)).not.toContain('198.18.2.0/24');
      expect(await until(async () => (await running.metric('ampguard_blocked_clients')) === families.length - 1, 5000)).toBe(true);
      expect(blast(hosts, SERVER_V4, spread4[51] as string, 3, 'www.example.test').received).toBe(3);
    }, 40_000);

    it('lifts the network blocks when the aggregates are turned off by SIGHUP', async () => {
      const running = ag as Ampguard;
      hosts.run(hosts.server, 'node', [CLI, 'blocks', 'add', NET4, '--config', running.configPath]);
      expect(await until(() => kernel.members(4).includes(NET4), 5000)).toBe(true);
      running.writeConfig({ ...config(), policy: { large_response: { aggregate: { enabled: false } } } });
      running.proc.child.kill('SIGHUP');
      expect(await until(() => !kernel.members(4).includes(NET4), 5000)).toBe(true);
      expect((await apiBlocks(hosts, running)).blocks.map((b) => b.prefix)).not.toContain(NET4);
      await running.proc.waitFor(/"networks":\[[^\]]*"198\.18\.2\.0\/24"[^\]]*\],"msg":"network blocks lifted: aggregate budgets are off"/, 5000);
      expect(blast(hosts, SERVER_V4, spread4[52] as string, 3, 'www.example.test').received).toBe(3);
    }, 40_000);
  });
}

suite('ipset', [4, 6]);
// the same kernel path through nftables interval sets; IPv4 only, to keep the run short
suite('nftables', [4]);
