// `ampguard firewall` and deploy/firewall/install.sh on a resolver host: each
// format accepted by the real tool in a scratch namespace, then installed (twice)
// on a server namespace where ampguard fronts a pdns_recursor that resolves
// through a forward zone to a stand-in authoritative server on the other host.
// Uncached names must resolve before, after the first and after the second
// install (the recursor's own upstream answers come back through conntrack
// ESTABLISHED), DNS service flows must stay untracked, the operator's own rules
// must survive, and nft mode must leave ipset alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, CLIENTS_V6, type Hosts } from '../helpers/netns.js';
import { startRecursor, ZONE_FILE, type Recursor } from '../helpers/recursor.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { dig } from '../helpers/dig.js';
import { stopServerHost } from '../helpers/server-host.js';

const unavailable = kernelUnavailable();
const CLIENT = CLIENTS_V4[1] as string;
const CLIENT6 = CLIENTS_V6[1] as string;
/** the stand-in authoritative server, on the client host: reached from the server host over the veth */
const AUTHORITY = CLIENTS_V4[3] as string;
const INSTALL = resolve('deploy/firewall/install.sh');

const dir = mkdtempSync(join(tmpdir(), 'ampguard-fw-'));
const configPath = join(dir, 'ampguard.yaml');
const config = {
  listen: { udp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`], tcp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`] },
  backends: [{ address: '127.0.0.1:5300' }],
  block: { mode: 'ipset' },
};
writeFileSync(configPath, stringify(config));
// every name under fwd.test exists, so each check asks the authority a name no cache holds
const FWD_ZONE = join(dir, 'fwd.test.zone');
writeFileSync(FWD_ZONE, [
  '$ORIGIN fwd.test.', '$TTL 300',
  '@ IN SOA ns1.fwd.test. hostmaster.fwd.test. 1 3600 600 86400 300', '@ IN NS ns1.fwd.test.',
  `ns1 IN A ${AUTHORITY}`, '* IN A 198.18.0.99', '',
].join('\n'));

const ruleset = (format: string): string => execFileSync('node', [CLI, 'firewall', '--config', configPath, '--format', format], { encoding: 'utf8' });

let fresh = 0;
/** an uncached name, asked of ampguard from the client host: the recursor must go upstream for it */
async function resolvesUncached(hosts: Hosts, server = SERVER_V4, client = CLIENT): Promise<void> {
  const name = `n${++fresh}-${process.pid}.fwd.test`;
  const a = await dig(server, 53, name, 'A', ['+notcp', '-b', client, '+time=5'], hosts.client);
  expect(a.status, `${name} via ${server}:\n${a.raw}`).toBe('NOERROR');
  expect(a.answerCount, a.raw).toBe(1);
}

/** The stand-in authority on the client host, and the server host's recursor forwarding to it. */
async function startResolverPair(hosts: Hosts): Promise<Recursor[]> {
  const authority = await startRecursor({
    netns: hosts.client, address: AUTHORITY, port: 53,
    settings: { 'auth-zones': `example.test=${ZONE_FILE},fwd.test=${FWD_ZONE}` },
  });
  const recursor = await startRecursor({
    netns: hosts.server, port: 5300,
    // -recurse: the stand-in (a recursor serving auth-zones) answers without AA; no DNSSEC for the made-up TLD
    settings: { 'auth-zones': '', 'forward-zones-recurse': `example.test=${AUTHORITY}:53, fwd.test=${AUTHORITY}:53`, 'dnssec': 'off' },
  });
  return [authority, recursor];
}

function install(hosts: Hosts, format: 'iptables' | 'nft', cfg: string): string {
  return hosts.run(hosts.server, 'sh', [INSTALL, cfg, format]);
}

/** conntrack entries of a namespace (the kernel shows each namespace its own table) */
function conntrack(hosts: Hosts): string {
  return hosts.run(hosts.server, 'cat', ['/proc/net/nf_conntrack']);
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(unavailable !== null)('stateless firewall ruleset', () => {
  let hosts: Hosts;
  let recs: Recursor[] = [];
  let ag: Ampguard | undefined;

  beforeAll(() => {
    hosts = createHosts();
  });
  afterAll(() => stopServerHost({ ag, recs, hosts }));

  it('iptables and ip6tables formats pass iptables-restore --noflush --test, in chains of their own', () => {
    // the scratch client namespace: the sets must exist for the set match to load
    hosts.run(hosts.client, 'ipset', ['restore'], ruleset('ipset'));
    const v4 = ruleset('iptables');
    expect(v4).toMatch(/-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips src -j DROP/);
    // the aggregate networks' set, which the set match can only load once `ipset restore` created it as hash:net
    expect(v4).toMatch(/-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net src -j DROP/);
    expect(hosts.run(hosts.client, 'ipset', ['list', '-t', 'throttled-ips-net'])).toMatch(/Type: hash:net[\s\S]*family inet /);
    expect(v4).toMatch(/-A AMPGUARD-PREROUTING -p udp --dport 53 -j CT --notrack/);
    expect(v4).toMatch(/-A AMPGUARD-OUTPUT -p udp -d 127\.0\.0\.1 --dport 5300 -j CT --notrack/);
    expect(v4).toMatch(/-A AMPGUARD-INPUT -p tcp ! --syn -j ACCEPT/);
    expect(v4).toMatch(/-A AMPGUARD-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT/);
    expect(v4).toMatch(/-A AMPGUARD-INPUT -p icmp --icmp-type destination-unreachable -j ACCEPT/);
    // nothing outside its own chains: no built-in chain's rules or policy in the restore input
    expect(v4).not.toMatch(/^-A (INPUT|OUTPUT|PREROUTING|FORWARD) /m);
    expect(v4).not.toMatch(/^:(INPUT|OUTPUT|PREROUTING|FORWARD) /m);
    hosts.run(hosts.client, 'iptables-restore', ['--noflush', '--test'], v4);
    const v6 = ruleset('ip6tables');
    expect(v6).toMatch(/--icmpv6-type packet-too-big -j ACCEPT/);
    expect(v6).toMatch(/-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net-v6 src -j DROP/);
    hosts.run(hosts.client, 'ip6tables-restore', ['--noflush', '--test'], v6);
  });

  it('nft format passes nft -c -f', () => {
    const nft = ruleset('nft');
    expect(nft).toMatch(/notrack/);
    expect(nft).toMatch(/tcp flags & \(syn \| ack\) != syn accept/);
    expect(nft).toMatch(/ct state established,related accept/);
    expect(nft).toMatch(/add set inet ampguard throttled-ips-net \{ type ipv4_addr; flags interval, timeout;/);
    expect(nft).toMatch(/ip6 saddr @throttled-ips-net-v6 counter drop/);
    hosts.run(hosts.client, 'nft', ['-c', '-f', '-'], nft);
  });

  it('install.sh (iptables), run twice on a resolver host: the recursor keeps resolving through its forward zone, the operator\'s rules stay', async () => {
    recs = await startResolverPair(hosts);
    ag = await startAmpguard({ netns: hosts.server, port: 53, config });
    // the operator's own rules, in every table install.sh touches
    hosts.run(hosts.server, 'iptables', ['-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '2222', '-j', 'ACCEPT']);
    hosts.run(hosts.server, 'iptables', ['-w', '-t', 'raw', '-A', 'PREROUTING', '-p', 'udp', '--dport', '4444', '-j', 'CT', '--notrack']);
    hosts.run(hosts.server, 'ip6tables', ['-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '2222', '-j', 'ACCEPT']);
    await resolvesUncached(hosts);

    for (const round of [1, 2]) {
      expect(install(hosts, 'iptables', ag.configPath), `install ${round}`).toMatch(/installed \(iptables\)/);
      await resolvesUncached(hosts);
      await resolvesUncached(hosts, SERVER_V6, CLIENT6);
      expect((await dig(SERVER_V4, 53, 'big.example.test', 'TXT', ['+tcp', '-b', CLIENT, '+time=5'], hosts.client)).answerCount, `round ${round}`).toBe(1);
      for (const tool of ['iptables', 'ip6tables']) {
        const rules = hosts.run(hosts.server, tool, ['-w', '-S']) + hosts.run(hosts.server, tool, ['-w', '-t', 'raw', '-S']);
        expect(rules, `${tool} round ${round}`).toContain('-A INPUT -p tcp -m tcp --dport 2222 -j ACCEPT');
        expect(rules).toContain('-P INPUT DROP');
        // one jump to each chain, however often it ran
        for (const jump of ['-A INPUT -j AMPGUARD-INPUT', '-A PREROUTING -j AMPGUARD-PREROUTING', '-A OUTPUT -j AMPGUARD-OUTPUT']) {
          expect(rules.split('\n').filter((l) => l === jump), `${tool}: ${jump}`).toHaveLength(1);
        }
      }
      expect(hosts.run(hosts.server, 'iptables', ['-w', '-t', 'raw', '-S', 'PREROUTING'])).toContain('--dport 4444 -j CT --notrack');
    }
    // the recursor's own upstream flow is tracked (that is how its answers get in); the served DNS flows are not
    const ct = conntrack(hosts);
    expect(ct).toMatch(new RegExp(`dst=${AUTHORITY.replace(/\./g, '\\.')} sport=\\d+ dport=53 `));
    expect(ct).not.toMatch(new RegExp(`src=${CLIENT.replace(/\./g, '\\.')} dst=${SERVER_V4.replace(/\./g, '\\.')} sport=\\d+ dport=53 `));
    const raw = hosts.run(hosts.server, 'iptables', ['-w', '-t', 'raw', '-L', 'AMPGUARD-PREROUTING', '-v', '-x', '-n']);
    const notracked = raw.split('\n').filter((l) => l.includes('CT notrack')).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(notracked.reduce((a, b) => a + b, 0)).toBeGreaterThan(2);
    // the DROP policy: a port nobody allowed gets no answer (a TCP connect must time out)
    const probe = hosts.tryRun(hosts.client, 'bash', ['-c', `timeout 2 bash -c '</dev/tcp/${SERVER_V4}/8081' 2>&1; echo rc=$?`]);
    expect(probe.out).toMatch(/rc=124/);
    // the operator's port stays open (refused by no one listening, not dropped)
    const own = hosts.tryRun(hosts.client, 'bash', ['-c', `timeout 2 bash -c '</dev/tcp/${SERVER_V4}/2222' 2>&1; echo rc=$?`]);
    expect(own.out).toMatch(/rc=1\b/);
    // no file left behind in a shared temporary directory
    expect(readdirSync(tmpdir()).filter((n) => /^ampguard\.(v4|v6|nft)$/.test(n))).toEqual([]);
  });
});

describe.skipIf(unavailable !== null)('install.sh in nft mode', () => {
  let hosts: Hosts;
  let recs: Recursor[] = [];
  let ag: Ampguard | undefined;

  beforeAll(() => {
    hosts = createHosts();
  });
  afterAll(() => stopServerHost({ ag, recs, hosts }));

  it('keeps the recursor resolving and the operator\'s table, twice, with no ipset at all', async () => {
    recs = await startResolverPair(hosts);
    ag = await startAmpguard({ netns: hosts.server, port: 53, config: { ...config, block: { mode: 'nftables' } } });
    hosts.run(hosts.server, 'nft', ['-f', '-'], 'add table inet operator\nadd chain inet operator input { type filter hook input priority 10; policy accept; }\nadd rule inet operator input tcp dport 2222 counter accept\n');
    await resolvesUncached(hosts);
    for (const round of [1, 2]) {
      expect(install(hosts, 'nft', ag.configPath), `install ${round}`).toMatch(/installed \(nft\)/);
      await resolvesUncached(hosts);
      await resolvesUncached(hosts, SERVER_V6, CLIENT6);
      const tables = hosts.run(hosts.server, 'nft', ['list', 'tables']);
      expect(tables.split('\n').filter((l) => l === 'table inet ampguard_firewall'), `round ${round}`).toHaveLength(1);
      expect(tables).toContain('table inet operator');
      expect(hosts.run(hosts.server, 'nft', ['list', 'table', 'inet', 'operator'])).toContain('tcp dport 2222');
      // one set of rules, not one per run
      const input = hosts.run(hosts.server, 'nft', ['list', 'chain', 'inet', 'ampguard_firewall', 'input']);
      expect(input.match(/ct state established,related accept/g)).toHaveLength(1);
    }
    expect(spawnSync('ip', ['netns', 'exec', hosts.server, 'ipset', 'list', '-n'], { encoding: 'utf8' }).stdout.trim()).toBe('');
    const probe = hosts.tryRun(hosts.client, 'bash', ['-c', `timeout 2 bash -c '</dev/tcp/${SERVER_V4}/8081' 2>&1; echo rc=$?`]);
    expect(probe.out).toMatch(/rc=124/);
  });
});
