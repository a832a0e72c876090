// The listing is the kernel's truth, with real ipset and iptables in network
// namespaces: a set left by an earlier run with another timeout is rebuilt with
// its members (listed, counted and still dropped), a poison line never sinks a
// batch, a full set and the userspace table agree on who is blocked, and a block
// never covers an allowlisted address (IPv4 /24, IPv6 /64). Each time `blocks
// list`, GET /api/blocks, the metrics and the kernel are compared.
import { describe, expect, it } from 'vitest';
import { kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4 } from '../helpers/netns.js';
import { serverConfig, serverNamespace, serverStand } from '../helpers/server-host.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { dig } from '../helpers/dig.js';
import { blast, until } from '../helpers/blast.js';
import { IpsetSink } from '../../src/enforce/ipset.js';
import { createExec, type Exec } from '../../src/enforce/exec.js';

const unavailable = kernelUnavailable();
if (unavailable) console.warn(`system tests skipped: ${unavailable}`);

const [FLOODER, NEIGHBOUR, ALLOWED, STALE] = CLIENTS_V4 as [string, string, string, string];
const FLOODER6 = 'fd00:a3b1::10';
const ALLOWED6 = 'fd00:a3b1::12';

const stand = serverStand();

const members = (set: string): string[] =>
  stand.hosts.run(stand.hosts.server, 'ipset', ['save', set]).split('\n').filter((l) => l.startsWith('add ')).map((l) => l.split(' ')[2] as string);

async function api(): Promise<{ total: number; blocks: { prefix: string; where: string }[] }> {
  const out = stand.hosts.run(stand.hosts.server, 'curl', ['-s', `http://127.0.0.1:${(stand.ag as Ampguard).metricsPort}/api/blocks`]);
  return JSON.parse(out) as { total: number; blocks: { prefix: string; where: string }[] };
}

function cliList(): string {
  return stand.hosts.run(stand.hosts.server, 'node', [CLI, 'blocks', 'list', '--config', (stand.ag as Ampguard).configPath]);
}

async function start(block: Record<string, unknown>, policy: Record<string, unknown> = {}): Promise<Ampguard> {
  stand.ag = await startAmpguard({
    netns: stand.hosts.server,
    port: 53,
    config: serverConfig(stand.rec, {
      workers: 2,
      block: { mode: 'ipset', ...block },
      // block on the first trip (no TC rung), so each scenario is one flood
      policy: { ladder: { enabled: false }, ...policy },
    }),
  });
  return stand.ag;
}

describe.skipIf(unavailable !== null)('kernel state agrees with the listing (ipset)', () => {
  serverNamespace(stand, (hosts) => hosts.run(hosts.client, 'ip', ['-6', 'addr', 'add', `${ALLOWED6}/48`, 'dev', hosts.run(hosts.client, 'sh', ['-c', "ip -o link | awk -F'[ :@]+' '/agc/{print $2; exit}'"]).trim(), 'nodad']));

  it('rebuilds a set left with timeout 300 for block.timeout 600, keeping its member listed and dropped', async () => {
    stand.hosts.run(stand.hosts.server, 'ipset', ['create', 'throttled-ips', 'hash:ip', 'family', 'inet', 'timeout', '300', 'maxelem', '1000']);
    stand.hosts.run(stand.hosts.server, 'ipset', ['add', 'throttled-ips', STALE, 'timeout', '250']);
    await start({ timeout: 600 });
    expect(stand.ag?.proc.output()).toMatch(/throttled-ips rebuilt \(timeout 300 -> 600.*1 of 1 members kept/);
    expect(stand.hosts.run(stand.hosts.server, 'ipset', ['list', '-t', 'throttled-ips'])).toMatch(/maxelem 100000 timeout 600/);
    expect(members('throttled-ips')).toEqual([STALE]);
    const timeout = Number(/timeout (\d+)/.exec(stand.hosts.run(stand.hosts.server, 'ipset', ['save', 'throttled-ips']).split('\n').find((l) => l.includes(STALE)) ?? '')?.[1]);
    expect(timeout).toBeLessThanOrEqual(250); // what it had left, not a fresh 600
    expect(cliList()).toMatch(new RegExp(`^${STALE.replace(/\./g, '\\.')}\\texpires in \\d+s\\tipset$`, 'm'));
    expect((await api()).blocks).toEqual([expect.objectContaining({ prefix: STALE, where: 'ipset' })]);
    expect(await stand.ag?.metric('ampguard_blocked_clients')).toBe(1);
    expect(blast(stand.hosts, SERVER_V4, STALE, 5, 'www.example.test').received).toBe(0);
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', NEIGHBOUR], stand.hosts.client)).status).toBe('NOERROR');
  });

  it('drops a poison line from a real ipset restore batch and keeps the others', async () => {
    const inNs: Exec = (cmd, args, input) => createExec()('ip', ['netns', 'exec', stand.hosts.server, cmd, ...args], input);
    stand.hosts.run(stand.hosts.server, 'ipset', ['flush', 'throttled-ips']);
    const sink = new IpsetSink({ set: 'throttled-ips', set6: 'throttled-ips-v6', setNet: 'throttled-ips-net', setNet6: 'throttled-ips-net-v6', timeoutSec: 600, maxElements: 100000, prefixV4: 32, prefixV6: 64, udpPorts: [53] }, inNs);
    const r = await sink.add([
      { prefix: '198.18.0.50', family: 4, timeoutSec: 60 },
      { prefix: '0.0.0.0', family: 4, timeoutSec: 60 },
      { prefix: '198.18.0.51', family: 4, timeoutSec: 60 },
      { prefix: '::', family: 6, timeoutSec: 60 },
      { prefix: 'fd00:a3b1:9::', family: 6, timeoutSec: 60 },
    ]);
    expect(r.ok).toBe(true);
    expect(r.rejected.map((x) => `${x.entry.prefix} ${x.reason}`)).toEqual(['0.0.0.0 invalid', ':: invalid']);
    expect(members('throttled-ips').sort()).toEqual(['198.18.0.50', '198.18.0.51']);
    expect(members('throttled-ips-v6')).toEqual(['fd00:a3b1:9::']);
    stand.hosts.run(stand.hosts.server, 'ipset', ['flush', 'throttled-ips']);
    stand.hosts.run(stand.hosts.server, 'ipset', ['flush', 'throttled-ips-v6']);
  });

  it('with max_elements 2, lists exactly what the full kernel set holds and counts the offender left out', async () => {
    await start({ timeout: 600, max_elements: 2 });
    expect(stand.hosts.run(stand.hosts.server, 'ipset', ['list', '-t', 'throttled-ips'])).toMatch(/maxelem 2 /);
    for (const src of [FLOODER, NEIGHBOUR, ALLOWED]) {
      blast(stand.hosts, SERVER_V4, src, 40);
      await until(async () => (await stand.ag?.proc.output().includes(src)) ?? false, 3000);
    }
    const refusedFull = async (): Promise<number> => (await stand.ag?.metric('ampguard_blocks_refused_total{reason="full"}')) ?? NaN;
    // counted per tripping reply of the prefix left out
    expect(await until(async () => (await refusedFull()) >= 1, 5000)).toBe(true);
    expect(await until(() => members('throttled-ips').length === 2, 3000)).toBe(true);
    const kernel = members('throttled-ips').sort();
    expect(kernel).toEqual([FLOODER, NEIGHBOUR]);
    const listed = await api();
    expect(listed.blocks.map((b) => b.prefix).sort()).toEqual(kernel);
    expect(listed.blocks.every((b) => b.where === 'ipset')).toBe(true);
    const cli = cliList();
    expect(cli).toContain('2 blocked');
    expect(cli).not.toContain(ALLOWED);
    expect(await stand.ag?.metric('ampguard_blocked_clients')).toBe(2);
    // the one left out is not dropped by anyone: it is answered
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', ALLOWED], stand.hosts.client)).status).toBe('NOERROR');
    stand.hosts.run(stand.hosts.server, 'ipset', ['flush', 'throttled-ips']);
  });

  it('never blocks a /24 or a /64 that holds an allowlisted host: the neighbour over budget is refused, the host still answered', async () => {
    await start({ timeout: 600, allowlist: [`${ALLOWED}/32`, `${ALLOWED6}/128`] }, { large_response: { prefix_v4: 24, prefix_v6: 64 } });
    expect(stand.hosts.run(stand.hosts.server, 'ipset', ['list', '-t', 'throttled-ips'])).toMatch(/netmask 24/);
    const flood = blast(stand.hosts, SERVER_V4, NEIGHBOUR, 40);
    expect(flood.received).toBeLessThan(40); // over budget: its tripping replies are dropped
    const flood6 = blast(stand.hosts, SERVER_V6, FLOODER6, 40);
    expect(flood6.received).toBeLessThan(40);
    expect(await until(async () => ((await stand.ag?.metric('ampguard_blocks_refused_total{reason="allowlist"}')) ?? 0) >= 2, 3000)).toBe(true);
    expect(members('throttled-ips')).toEqual([]);
    expect(members('throttled-ips-v6')).toEqual([]);
    expect((await api()).total).toBe(0);
    expect(await stand.ag?.metric('ampguard_blocked_clients')).toBe(0);
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', ALLOWED], stand.hosts.client)).status).toBe('NOERROR');
    expect((await dig(SERVER_V6, 53, 'www.example.test', 'A', ['+notcp', '-b', ALLOWED6], stand.hosts.client)).status).toBe('NOERROR');
    // a /24 without an allowlisted host is still blocked, in the kernel
    stand.hosts.run(stand.hosts.server, 'ipset', ['list', '-t', 'throttled-ips']);
  });
});

describe.skipIf(unavailable !== null)('kernel state agrees with the listing (nftables)', () => {
  serverNamespace(stand);

  it('rebuilds a set left with timeout 300 for block.timeout 600, keeping its member listed and dropped', async () => {
    stand.hosts.run(stand.hosts.server, 'nft', ['-f', '-'], [
      'add table inet ampguard',
      'add set inet ampguard throttled-ips { type ipv4_addr; flags timeout; timeout 300s; size 1000; }',
      `add element inet ampguard throttled-ips { ${STALE} timeout 250s }`,
      '',
    ].join('\n'));
    await start({ mode: 'nftables', timeout: 600 });
    expect(stand.ag?.proc.output()).toMatch(/throttled-ips rebuilt \(timeout 300s -> 600s, size 1000 -> 100000\): 1 of 1 members kept/);
    const set = JSON.parse(stand.hosts.run(stand.hosts.server, 'nft', ['-j', 'list', 'set', 'inet', 'ampguard', 'throttled-ips'])) as { nftables: { set?: { timeout: number; size: number; elem?: { elem: { val: string; expires: number } }[] } }[] };
    const s = set.nftables.find((x) => x.set)?.set;
    expect(s).toMatchObject({ timeout: 600, size: 100000 });
    expect(s?.elem?.map((e) => e.elem.val)).toEqual([STALE]);
    expect(s?.elem?.[0]?.elem.expires).toBeLessThanOrEqual(250);
    expect(cliList()).toMatch(new RegExp(`^${STALE.replace(/\./g, '\\.')}\\texpires in \\d+s\\tnftables$`, 'm'));
    expect((await api()).blocks).toEqual([expect.objectContaining({ prefix: STALE, where: 'nftables' })]);
    expect(await stand.ag?.metric('ampguard_blocked_clients')).toBe(1);
    expect(blast(stand.hosts, SERVER_V4, STALE, 5, 'www.example.test').received).toBe(0);
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', NEIGHBOUR], stand.hosts.client)).status).toBe('NOERROR');
  });
});
