// What a ruleset is made from, taken from the runtime config.
import type { RuntimeConfig } from '../config/compile.js';
import type { HostPort } from '../config/address.js';

export interface FirewallInput {
  readonly udpPorts: readonly number[];
  readonly tcpPorts: readonly number[];
  readonly backends: readonly HostPort[];
  readonly set: string;
  readonly set6: string;
  readonly timeoutSec: number;
  readonly maxElements: number;
  readonly prefixV4: number;
  readonly prefixV6: number;
  readonly metricsPort: number;
  readonly allowTcp: readonly number[];
  readonly allowUdp: readonly number[];
}

const uniq = (ns: readonly number[]): number[] => [...new Set(ns)].sort((a, b) => a - b);

export function firewallInput(rt: RuntimeConfig): FirewallInput {
  const c = rt.source;
  return {
    udpPorts: uniq(rt.listenUdp.map((a) => a.port)),
    tcpPorts: uniq(rt.listenTcp.map((a) => a.port)),
    backends: rt.backends.map((b) => b.address),
    set: c.block.set,
    set6: `${c.block.set}-v6`,
    timeoutSec: c.block.timeout,
    maxElements: c.block.max_elements,
    prefixV4: c.policy.large_response.prefix_v4,
    prefixV6: c.policy.large_response.prefix_v6,
    metricsPort: rt.metricsListen.port,
    allowTcp: uniq(c.firewall.allow_tcp),
    allowUdp: uniq(c.firewall.allow_udp),
  };
}
