// What the kernel sinks and the firewall generator need from the config.
import type { RuntimeConfig } from '../config/compile.js';

export interface KernelSettings {
  readonly set: string;
  readonly set6: string;
  /** hash:net / interval sets for the networks the aggregate budgets block (docs/defence.md) */
  readonly setNet: string;
  readonly setNet6: string;
  readonly timeoutSec: number;
  readonly maxElements: number;
  readonly prefixV4: number;
  readonly prefixV6: number;
  /** UDP ports ampguard serves, which the raw DROP rule covers */
  readonly udpPorts: readonly number[];
}

export function kernelSettings(runtime: RuntimeConfig): KernelSettings {
  const config = runtime.source;
  return {
    set: config.block.set,
    set6: `${config.block.set}-v6`,
    setNet: `${config.block.set}-net`,
    setNet6: `${config.block.set}-net-v6`,
    timeoutSec: config.block.timeout,
    maxElements: config.block.max_elements,
    prefixV4: config.policy.large_response.prefix_v4,
    prefixV6: config.policy.large_response.prefix_v6,
    udpPorts: [...new Set(runtime.listenUdp.map((a) => a.port))].sort((a, b) => a - b),
  };
}

/** One of the four sets: per-prefix (the budget prefix at the set's netmask) or networks (interval / hash:net), per family. */
export interface KernelSet {
  readonly name: string;
  readonly family: 4 | 6;
  readonly network: boolean;
}

/** The set that holds `family`'s budget prefixes, or (network) its blocked networks. */
export function kernelSetName(k: KernelSettings, family: 4 | 6, network = false): string {
  if (network) return family === 4 ? k.setNet : k.setNet6;
  return family === 4 ? k.set : k.set6;
}

/** The four sets, in the order ipset and nft create and check them: per family, per-prefix then networks. */
export function kernelSets(k: KernelSettings): KernelSet[] {
  return ([4, 6] as const).flatMap((family) => [false, true].map((network) => ({ name: kernelSetName(k, family, network), family, network })));
}
