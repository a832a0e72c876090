import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { iptablesRuleset, ipsetCreateScript, IPTABLES_JUMPS } from '../../../src/firewall/iptables.js';
import { nftRuleset } from '../../../src/firewall/nft.js';
import { parseIpsetSave } from '../../../src/enforce/ipset.js';
import { parseNftSetJson } from '../../../src/enforce/nftables.js';
import type { FirewallInput } from '../../../src/firewall/input.js';

const f: FirewallInput = {
  udpPorts: [53], tcpPorts: [53, 853],
  backends: [{ host: '127.0.0.1', port: 5300, family: 4 }, { host: 'fd00::53', port: 53, family: 6 }],
  set: 'throttled-ips', set6: 'throttled-ips-v6', setNet: 'throttled-ips-net', setNet6: 'throttled-ips-net-v6', timeoutSec: 600, maxElements: 100000, prefixV4: 32, prefixV6: 64,
  metricsPort: 9153, allowTcp: [22], allowUdp: [],
};

describe('iptables ruleset', () => {
  const v4 = iptablesRuleset(f, 4);
  it('drops the set before NOTRACK, in its raw PREROUTING chain', () => {
    const drop = v4.indexOf('-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips src -j DROP');
    const notrack = v4.indexOf('-A AMPGUARD-PREROUTING -p udp --dport 53 -j CT --notrack');
    expect(drop).toBeGreaterThan(v4.indexOf('*raw'));
    expect(drop).toBeLessThan(notrack);
  });
  it('untracks serving and backending in both directions, for the right family only', () => {
    for (const rule of ['-A AMPGUARD-OUTPUT -p udp --sport 53', '-A AMPGUARD-PREROUTING -p tcp --dport 853', '-A AMPGUARD-OUTPUT -p tcp -d 127.0.0.1 --dport 5300', '-A AMPGUARD-PREROUTING -p udp -s 127.0.0.1 --sport 5300']) {
      expect(v4).toContain(`${rule}`);
    }
    expect(v4).not.toContain('fd00::53');
    expect(iptablesRuleset(f, 6)).toContain('-A AMPGUARD-OUTPUT -p udp -d fd00::53 --dport 53 -j CT --notrack');
  });
  it('keeps SSH and the metrics port open under the DROP policy', () => {
    expect(v4).toContain('-A AMPGUARD-INPUT -p tcp --dport 22 -j ACCEPT');
    expect(v4).toContain('-A AMPGUARD-INPUT -p tcp --dport 9153 -j ACCEPT');
  });
  it('lets the host\'s own flows back in through conntrack, after loopback', () => {
    const est = v4.indexOf('-A AMPGUARD-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT');
    expect(est).toBeGreaterThan(v4.indexOf('-A AMPGUARD-INPUT -i lo -j ACCEPT'));
  });
  it('declares only chains of its own, so --noflush leaves every other rule and policy alone', () => {
    for (const text of [v4, iptablesRuleset(f, 6)]) {
      const declared = text.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]);
      expect(declared).toEqual(['AMPGUARD-PREROUTING', 'AMPGUARD-OUTPUT', 'AMPGUARD-INPUT']);
      expect(text.split('\n').filter((l) => l.startsWith('-A ')).every((l) => l.startsWith('-A AMPGUARD-'))).toBe(true);
    }
  });
  it('install.sh adds exactly the jumps the generator names, each only when missing', () => {
    const sh = readFileSync('deploy/firewall/install.sh', 'utf8');
    for (const j of IPTABLES_JUMPS) {
      const add = `"$tool" -w -t ${j.table} ${j.insert ? `-I ${j.chain} 1` : `-A ${j.chain}`} -j ${j.target}`;
      expect(sh).toContain(`"$tool" -w -t ${j.table} -C ${j.chain} -j ${j.target} 2>/dev/null || ${add}`);
    }
    expect(sh).toContain('--noflush');
    expect(sh).not.toMatch(/\/tmp\//);
    // nft mode touches no ipset
    const nftBranch = /\n  nft\)\n([\s\S]*?);;/.exec(sh)?.[1] ?? '';
    expect(nftBranch).toContain('nft -f -');
    expect(nftBranch).not.toContain('ipset');
  });
  it('creates sets with the budget prefix as netmask, and hash:net sets for the aggregate networks', () => {
    expect(ipsetCreateScript(f)).toBe(
      'create throttled-ips hash:ip family inet timeout 600 maxelem 100000 netmask 32 -exist\n' +
      'create throttled-ips-v6 hash:ip family inet6 timeout 600 maxelem 100000 netmask 64 -exist\n' +
      'create throttled-ips-net hash:net family inet timeout 600 maxelem 100000 -exist\n' +
      'create throttled-ips-net-v6 hash:net family inet6 timeout 600 maxelem 100000 -exist\n',
    );
  });
  it('drops the network sets in raw PREROUTING too, before NOTRACK', () => {
    const drop = v4.indexOf('-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net src -j DROP');
    expect(drop).toBeGreaterThan(v4.indexOf('*raw'));
    expect(drop).toBeLessThan(v4.indexOf('-A AMPGUARD-PREROUTING -p udp --dport 53 -j CT --notrack'));
    expect(iptablesRuleset(f, 6)).toContain('-A AMPGUARD-PREROUTING -p udp --dport 53 -m set --match-set throttled-ips-net-v6 src -j DROP');
    expect(v4).not.toContain('throttled-ips-net-v6');
  });
});

describe('nft ruleset', () => {
  const nft = nftRuleset(f);
  it('masks source addresses to the budget prefix', () => {
    expect(nft).toContain('ip6 saddr & ffff:ffff:ffff:ffff:0:0:0:0 @throttled-ips-v6 counter drop');
  });
  it('matches any address inside a blocked network through interval sets', () => {
    expect(nft).toContain('add set inet ampguard throttled-ips-net { type ipv4_addr; flags interval, timeout; timeout 600s; size 100000; }');
    expect(nft).toContain('add set inet ampguard throttled-ips-net-v6 { type ipv6_addr; flags interval, timeout; timeout 600s; size 100000; }');
    expect(nft).toContain('udp dport { 53 } ip saddr @throttled-ips-net counter drop');
    expect(nft).toContain('udp dport { 53 } ip6 saddr @throttled-ips-net-v6 counter drop');
  });
  it('never flushes or deletes the enforcement table (its sets hold the blocks); replaces its own table whole', () => {
    expect(nft).not.toMatch(/(flush|delete) table inet ampguard\b(?!_)/);
    expect(nft).toContain('add table inet ampguard_firewall\ndelete table inet ampguard_firewall\nadd table inet ampguard_firewall\n');
  });
  it('accepts the host\'s own flows through conntrack', () => {
    expect(nft).toContain('add rule inet ampguard_firewall input ct state established,related accept');
  });
});

describe('kernel set listings', () => {
  it('parses ipset save', () => {
    const text = 'create throttled-ips hash:ip family inet hashsize 1024 maxelem 100000 timeout 600\nadd throttled-ips 198.18.0.10 timeout 587\nadd throttled-ips 198.18.0.11 timeout 3\n';
    expect(parseIpsetSave(text, 4)).toEqual([{ prefix: '198.18.0.10', family: 4, timeoutSec: 587 }, { prefix: '198.18.0.11', family: 4, timeoutSec: 3 }]);
    expect(parseIpsetSave('add throttled-ips-net 198.18.2.0/24 timeout 9\n', 4, true)).toEqual([{ prefix: '198.18.2.0/24', family: 4, timeoutSec: 9, network: true }]);
  });
  it('parses nft -j list set', () => {
    const text = '{"nftables": [{"metainfo": {}}, {"set": {"name": "throttled-ips", "elem": [{"elem": {"val": "198.18.0.1", "timeout": 5, "expires": 4}}, "198.18.0.2"]}}]}';
    expect(parseNftSetJson(text, 4)).toEqual([{ prefix: '198.18.0.1', family: 4, timeoutSec: 4 }, { prefix: '198.18.0.2', family: 4, timeoutSec: 0 }]);
    expect(parseNftSetJson('not json', 4)).toEqual([]);
    const nets = '{"nftables": [{"set": {"name": "throttled-ips-net-v6", "elem": [{"elem": {"val": {"prefix": {"addr": "fd00:a3b2::", "len": 48}}, "expires": 7}}, {"prefix": {"addr": "fd00:a3b3::", "len": 48}}, {"range": ["fd00::1", "fd00::9"]}]}}]}';
    expect(parseNftSetJson(nets, 6, true)).toEqual([
      { prefix: 'fd00:a3b2::/48', family: 6, timeoutSec: 7, network: true },
      { prefix: 'fd00:a3b3::/48', family: 6, timeoutSec: 0, network: true },
    ]);
  });
});
