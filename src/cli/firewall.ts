// `ampguard firewall --config FILE [--format iptables|ip6tables|nft|ipset]`
import { runtimeFromFile, CliError } from './common.js';
import { firewallInput } from '../firewall/input.js';
import { iptablesRuleset, ipsetCreateScript } from '../firewall/iptables.js';
import { nftRuleset } from '../firewall/nft.js';

export function firewallCommand(path: string, format: string): number {
  const f = firewallInput(runtimeFromFile(path));
  const out: Record<string, () => string> = {
    iptables: () => iptablesRuleset(f, 4),
    ip6tables: () => iptablesRuleset(f, 6),
    nft: () => nftRuleset(f),
    ipset: () => ipsetCreateScript(f),
  };
  const make = out[format];
  if (!make) throw new CliError('E_USAGE', `--format must be one of ${Object.keys(out).join(', ')}`, 2);
  process.stdout.write(make());
  return 0;
}
