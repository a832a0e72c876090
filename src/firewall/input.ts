// What a ruleset is made from: the kernel set as the sinks keep it, plus the
// ports and backends the stateless rules must let through.
import type { RuntimeConfig } from '../config/compile.js';
import type { HostPort } from '../config/address.js';
import { kernelSettings, type KernelSettings } from '../kernel/settings.js';

export interface FirewallInput extends KernelSettings {
  readonly tcpPorts: readonly number[];
  readonly backends: readonly HostPort[];
  readonly metricsPort: number;
  readonly allowTcp: readonly number[];
  readonly allowUdp: readonly number[];
}

const uniq = (ns: readonly number[]): number[] => [...new Set(ns)].sort((a, b) => a - b);

export function firewallInput(rt: RuntimeConfig): FirewallInput {
  return {
    ...kernelSettings(rt),
    tcpPorts: uniq(rt.listenTcp.map((a) => a.port)),
    backends: rt.backends.map((b) => b.address),
    metricsPort: rt.metricsListen.port,
    allowTcp: uniq(rt.source.firewall.allow_tcp),
    allowUdp: uniq(rt.source.firewall.allow_udp),
  };
}
