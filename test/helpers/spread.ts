// A further client network for spread (carpet-bombing) floods: COUNT addresses
// of one /24 on the client host's veth, routed from the server host. Inside
// 198.18.0.0/15 only; removed with the namespaces.
import type { Hosts } from './netns.js';

function vethOf(hosts: Hosts, ns: string): string {
  const line = hosts.run(ns, 'ip', ['-o', 'link', 'show', 'type', 'veth']).split('\n')[0] ?? '';
  const name = /^\d+:\s+([^@:]+)/.exec(line)?.[1];
  if (!name) throw new Error(`no veth in ${ns}: ${line}`);
  return name;
}

/** Adds `${net}.1` .. `${net}.${count}` to the client host; returns them. */
export function addSpreadNetwork(hosts: Hosts, net: string, count: number): string[] {
  const vc = vethOf(hosts, hosts.client);
  const addresses = Array.from({ length: count }, (_, i) => `${net}.${i + 1}`);
  hosts.run(hosts.client, 'ip', ['-batch', '-'], addresses.map((a) => `addr add ${a}/24 dev ${vc}\n`).join(''));
  hosts.run(hosts.server, 'ip', ['route', 'add', `${net}.0/24`, 'dev', vethOf(hosts, hosts.server)]);
  return addresses;
}

/**
 * Adds any client addresses (IPv4 or IPv6, no DAD) to the client host's veth
 * and routes each of `routes` (CIDRs) from the server host to it; returns the
 * addresses.
 */
export function addClientAddresses(hosts: Hosts, addresses: string[], routes: string[]): string[] {
  const vc = vethOf(hosts, hosts.client);
  const lines = addresses.map((a) => (a.includes(':') ? `addr add ${a}/128 dev ${vc} nodad\n` : `addr add ${a}/32 dev ${vc}\n`));
  hosts.run(hosts.client, 'ip', ['-batch', '-'], lines.join(''));
  const vs = vethOf(hosts, hosts.server);
  for (const r of routes) hosts.run(hosts.server, 'ip', [...(r.includes(':') ? ['-6'] : []), 'route', 'add', r, 'dev', vs]);
  return addresses;
}
