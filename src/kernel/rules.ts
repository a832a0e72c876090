// Rule fragments shared by the kernel sinks (which install them at start) and
// the `ampguard firewall` generators (which print whole rulesets), so both
// always describe the same DROP.
import { ipv4Text } from '../net/ip.js';

/** iptables match for "UDP to our port from a member of the set": Packet-path step 8. */
export function ipsetDropRuleArgs(set: string, port: number): string[] {
  return ['-p', 'udp', '--dport', String(port), '-m', 'set', '--match-set', set, 'src', '-j', 'DROP'];
}

/**
 * `ipset create` arguments for one of the four sets: per-prefix (hash:ip, its
 * members keyed by the budget prefix through netmask) or networks (hash:net,
 * each network at its own length). The sink runs them; `ampguard firewall`
 * prints them for `ipset restore`.
 */
export function ipsetCreateArgs(
  name: string, family: 4 | 6, network: boolean, k: { readonly timeoutSec: number; readonly maxElements: number; readonly prefixV4: number; readonly prefixV6: number },
): string[] {
  const args = ['create', name, network ? 'hash:net' : 'hash:ip', 'family', family === 4 ? 'inet' : 'inet6', 'timeout', String(k.timeoutSec), 'maxelem', String(k.maxElements)];
  return network ? args : [...args, 'netmask', String(family === 4 ? k.prefixV4 : k.prefixV6)];
}

export const NFT_TABLE = 'ampguard';

/** The nftables table, sets and raw-priority chain, as `nft -f` input. */
export function nftEnforcementScript(opts: {
  set: string;
  set6: string;
  setNet: string;
  setNet6: string;
  timeoutSec: number;
  maxElements: number;
  prefixV4: number;
  prefixV6: number;
  udpPorts: readonly number[];
}): string {
  const ports = opts.udpPorts.join(', ');
  return [
    `add table inet ${NFT_TABLE}`,
    `add set inet ${NFT_TABLE} ${opts.set} { type ipv4_addr; flags timeout; timeout ${opts.timeoutSec}s; size ${opts.maxElements}; }`,
    `add set inet ${NFT_TABLE} ${opts.set6} { type ipv6_addr; flags timeout; timeout ${opts.timeoutSec}s; size ${opts.maxElements}; }`,
    // networks of any length (the aggregate budgets'): interval sets match a source inside one, no mask needed
    `add set inet ${NFT_TABLE} ${opts.setNet} { type ipv4_addr; flags interval, timeout; timeout ${opts.timeoutSec}s; size ${opts.maxElements}; }`,
    `add set inet ${NFT_TABLE} ${opts.setNet6} { type ipv6_addr; flags interval, timeout; timeout ${opts.timeoutSec}s; size ${opts.maxElements}; }`,
    `add chain inet ${NFT_TABLE} prerouting { type filter hook prerouting priority raw; policy accept; }`,
    `flush chain inet ${NFT_TABLE} prerouting`,
    `add rule inet ${NFT_TABLE} prerouting udp dport { ${ports} } ip saddr & ${v4Mask(opts.prefixV4)} @${opts.set} counter drop`,
    `add rule inet ${NFT_TABLE} prerouting udp dport { ${ports} } ip6 saddr & ${v6Mask(opts.prefixV6)} @${opts.set6} counter drop`,
    `add rule inet ${NFT_TABLE} prerouting udp dport { ${ports} } ip saddr @${opts.setNet} counter drop`,
    `add rule inet ${NFT_TABLE} prerouting udp dport { ${ports} } ip6 saddr @${opts.setNet6} counter drop`,
    '',
  ].join('\n');
}

function v4Mask(bits: number): string {
  const m = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ipv4Text(m);
}

function v6Mask(bits: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    groups.push(((0xffff << (16 - keep)) & 0xffff).toString(16));
  }
  return groups.join(':');
}
