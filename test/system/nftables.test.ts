// Kernel enforcement with real nftables in network namespaces: the inet
// ampguard table, timeout sets and a raw-priority prerouting chain. At the
// default config a flood gets TC answers once over budget and is blocked when
// its ladder window is judged without TCP follow-ups (docs/defence.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, CLIENTS_V6, type Hosts } from '../helpers/netns.js';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { startServerHost, stopServerHost } from '../helpers/server-host.js';
import { dig } from '../helpers/dig.js';
import { blast, until } from '../helpers/blast.js';

const unavailable = kernelUnavailable();
const [FLOODER, NEIGHBOUR] = CLIENTS_V4 as [string, string];
const [FLOODER6, NEIGHBOUR6] = CLIENTS_V6 as [string, string];

let hosts: Hosts;
let rec: Recursor;
let ag: Ampguard;

const set = (name: string): string => hosts.run(hosts.server, 'nft', ['list', 'set', 'inet', 'ampguard', name]);

/** packets counted by the DROP rule of one family */
function dropped(family: 'ip' | 'ip6'): number {
  const chain = hosts.run(hosts.server, 'nft', ['list', 'chain', 'inet', 'ampguard', 'prerouting']);
  const line = chain.split('\n').find((l) => l.includes(`${family} saddr`) && l.includes('drop'));
  return Number(/counter packets (\d+)/.exec(line ?? '')?.[1] ?? NaN);
}

describe.skipIf(unavailable !== null)('nftables enforcement', () => {
  beforeAll(async () => {
    hosts = createHosts();
    ({ rec, ag } = await startServerHost(hosts, { block: { mode: 'nftables', timeout: 30 } }));
  });

  afterAll(() => stopServerHost({ ag, rec, hosts }));

  it('creates the table, timeout sets and a prerouting chain at raw priority', () => {
    const table = hosts.run(hosts.server, 'nft', ['list', 'table', 'inet', 'ampguard']);
    expect(table).toMatch(/set throttled-ips \{\s*type ipv4_addr\s*size 100000\s*(flags timeout\s*)?timeout 30s/);
    expect(table).toMatch(/set throttled-ips-v6 \{\s*type ipv6_addr/);
    expect(table).toMatch(/set throttled-ips-net \{\s*type ipv4_addr\s*size 100000\s*flags interval,timeout\s*timeout 30s/);
    expect(table).toMatch(/set throttled-ips-net-v6 \{\s*type ipv6_addr\s*size 100000\s*flags interval,timeout/);
    expect(table).toMatch(/type filter hook prerouting priority raw; policy accept;/);
    expect(table).toMatch(/ip saddr @throttled-ips-net counter packets 0 bytes 0 drop/);
    expect(table).toMatch(/ip6 saddr @throttled-ips-net-v6 counter packets 0 bytes 0 drop/);
  });

  it('blocks a flooding IPv4 client in the kernel; TCP and the neighbour still work', async () => {
    const flood = blast(hosts, SERVER_V4, FLOODER, 40);
    expect(flood.received - flood.truncated).toBeGreaterThanOrEqual(10);
    expect(flood.truncated).toBeGreaterThanOrEqual(10);
    expect(await until(() => set('throttled-ips').includes(FLOODER), 5000)).toBe(true);
    expect(await ag.metric('ampguard_blocks_total{mode="nftables"}')).toBe(1);
    const before = await ag.metric('ampguard_queries_total{proto="udp"}');
    const dropsBefore = dropped('ip');
    expect(blast(hosts, SERVER_V4, FLOODER, 20, 'www.example.test').received).toBe(0);
    expect(dropped('ip') - dropsBefore).toBe(20);
    expect(await ag.metric('ampguard_queries_total{proto="udp"}')).toBe(before);
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+tcp', '-b', FLOODER], hosts.client)).status).toBe('NOERROR');
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', NEIGHBOUR], hosts.client)).status).toBe('NOERROR');
  });

  it('blocks a flooding IPv6 /64', async () => {
    expect(blast(hosts, SERVER_V6, FLOODER6, 40).truncated).toBeGreaterThanOrEqual(10);
    expect(await until(() => set('throttled-ips-v6').includes('fd00:a3b1::'), 5000)).toBe(true);
    const dropsBefore = dropped('ip6');
    expect(blast(hosts, SERVER_V6, FLOODER6, 10, 'www.example.test').received).toBe(0);
    expect(dropped('ip6') - dropsBefore).toBe(10);
    expect((await dig(SERVER_V6, 53, 'www.example.test', 'A', ['+notcp', '-b', NEIGHBOUR6], hosts.client)).status).toBe('NOERROR');
  });
});
