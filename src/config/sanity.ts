// Checks across keys that no single key's schema can make (check-config and
// start): a backend that is ampguard's own listen address (every query would
// loop back into ampguard until the in-flight table fills), and warnings for
// listeners open beyond this host.
import type { RuntimeConfig } from './compile.js';
import type { ConfigIssue } from './load.js';
import { formatHostPort, type HostPort } from './address.js';

const UNSPECIFIED = new Set(['0.0.0.0', '::']);
const isLoopback = (host: string): boolean => host.startsWith('127.') || host === '::1' || host === 'localhost';

/** A listen address answers on `b`: the same port, and the same host or a wildcard of the family. */
function listensOn(l: HostPort, b: HostPort): boolean {
  if (l.port !== b.port) return false;
  if (l.host === b.host) return true;
  return UNSPECIFIED.has(l.host) && (UNSPECIFIED.has(b.host) || isLoopback(b.host));
}

export function forwardLoops(rt: RuntimeConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  rt.backends.forEach((b, i) => {
    const own = [...rt.listenUdp.map((l, j) => [l, `listen.udp.${j}`] as const), ...rt.listenTcp.map((l, j) => [l, `listen.tcp.${j}`] as const)]
      .find(([l]) => listensOn(l, b.address));
    if (own) {
      issues.push({ path: `backends.${i}.address`, message: `${formatHostPort(b.address)} is ampguard's own listen address (${own[1]}): queries would loop back into ampguard` });
    }
  });
  return issues;
}

export function exposureWarnings(rt: RuntimeConfig): ConfigIssue[] {
  const m = rt.metricsListen;
  if (isLoopback(m.host)) return [];
  return [{
    path: 'metrics.listen',
    message: `${formatHostPort(m)} is not loopback: metrics, the dashboard and /api/top (client addresses) are readable by anyone who reaches it; firewall it to your Prometheus (block changes stay loopback-only)`,
  }];
}
