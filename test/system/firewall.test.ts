// `ampguard firewall`: each format accepted by the real tool in a scratch
// namespace, then applied for real in front of a running ampguard to show the
// stateless ruleset lets DNS through (UDP, TCP, both untracked) and drops the rest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, CLIENTS_V6, type Hosts } from '../helpers/netns.js';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { dig } from '../helpers/dig.js';
import { stopAll } from '../helpers/process.js';

const unavailable = kernelUnavailable();
const CLIENT = CLIENTS_V4[1] as string;
const CLIENT6 = CLIENTS_V6[1] as string;

const dir = mkdtempSync(join(tmpdir(), 'ampguard-fw-'));
const configPath = join(dir, 'ampguard.yaml');
const config = {
  listen: { udp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`], tcp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`] },
  backends: [{ address: '127.0.0.1:5300' }],
  block: { mode: 'ipset' },
};
writeFileSync(configPath, stringify(config));

const ruleset = (format: string): string => execFileSync('node', [CLI, 'firewall', '--config', configPath, '--format', format], { encoding: 'utf8' });

describe.skipIf(unavailable !== null)('stateless firewall ruleset', () => {
  let hosts: Hosts;
  let rec: Recursor;
  let ag: Ampguard;

  beforeAll(() => {
    hosts = createHosts();
  });
  afterAll(async () => {
    await ag?.stop();
    await rec?.close();
    await stopAll();
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('iptables and ip6tables formats pass iptables-restore --test', () => {
    // the scratch client namespace: the sets must exist for the set match to load
    hosts.run(hosts.client, 'ipset', ['restore'], ruleset('ipset'));
    const v4 = ruleset('iptables');
    expect(v4).toMatch(/-A PREROUTING -p udp --dport 53 -m set --match-set throttled-ips src -j DROP/);
    // the aggregate networks' set, which the set match can only load once `ipset restore` created it as hash:net
    expect(v4).toMatch(/-A PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net src -j DROP/);
    expect(hosts.run(hosts.client, 'ipset', ['list', '-t', 'throttled-ips-net'])).toMatch(/Type: hash:net[\s\S]*family inet /);
    expect(v4).toMatch(/-A PREROUTING -p udp --dport 53 -j CT --notrack/);
    expect(v4).toMatch(/-A OUTPUT -p udp -d 127\.0\.0\.1 --dport 5300 -j CT --notrack/);
    expect(v4).toMatch(/-A INPUT -p tcp ! --syn -j ACCEPT/);
    expect(v4).toMatch(/-A INPUT -p icmp --icmp-type destination-unreachable -j ACCEPT/);
    expect(v4).toMatch(/:INPUT DROP/);
    hosts.run(hosts.client, 'iptables-restore', ['--test'], v4);
    const v6 = ruleset('ip6tables');
    expect(v6).toMatch(/--icmpv6-type packet-too-big -j ACCEPT/);
    expect(v6).toMatch(/-A PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net-v6 src -j DROP/);
    hosts.run(hosts.client, 'ip6tables-restore', ['--test'], v6);
  });

  it('nft format passes nft -c -f', () => {
    const nft = ruleset('nft');
    expect(nft).toMatch(/notrack/);
    expect(nft).toMatch(/tcp flags & \(syn \| ack\) != syn accept/);
    expect(nft).toMatch(/add set inet ampguard throttled-ips-net \{ type ipv4_addr; flags interval, timeout;/);
    expect(nft).toMatch(/ip6 saddr @throttled-ips-net-v6 counter drop/);
    hosts.run(hosts.client, 'nft', ['-c', '-f', '-'], nft);
  });

  it('applied in front of ampguard, lets DNS through untracked and drops everything else', async () => {
    rec = await startRecursor({ netns: hosts.server, port: 5300 });
    ag = await startAmpguard({ netns: hosts.server, port: 53, config });
    hosts.run(hosts.server, 'iptables-restore', [], ruleset('iptables'));
    hosts.run(hosts.server, 'ip6tables-restore', [], ruleset('ip6tables'));
    for (const [server, client] of [[SERVER_V4, CLIENT], [SERVER_V6, CLIENT6]] as const) {
      expect((await dig(server, 53, 'www.example.test', 'A', ['+notcp', '-b', client], hosts.client)).status, server).toBe('NOERROR');
      expect((await dig(server, 53, 'big.example.test', 'TXT', ['+tcp', '-b', client], hosts.client)).answerCount, server).toBe(1);
    }
    const raw = hosts.run(hosts.server, 'iptables', ['-t', 'raw', '-L', '-v', '-x', '-n']);
    const notracked = raw.split('\n').filter((l) => l.includes('CT notrack')).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(notracked.reduce((a, b) => a + b, 0)).toBeGreaterThan(4);
    // default DROP: a port nobody allowed gets no answer (nc would hang; a TCP connect must fail)
    const probe = hosts.tryRun(hosts.client, 'bash', ['-c', `timeout 2 bash -c '</dev/tcp/${SERVER_V4}/8081' 2>&1; echo rc=$?`]);
    expect(probe.out).toMatch(/rc=124/);
  });
});
