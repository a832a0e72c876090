// Checks across keys that no single key's schema can make (check-config and
// start): a backend that is ampguard's own listen address (every query would
// loop back into ampguard until the in-flight table fills), and warnings for
// listeners open beyond this host or on a port the CLI cannot reach.
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

/**
 * The ports fetch refuses before connecting ("bad ports",
 * https://fetch.spec.whatwg.org/#port-blocking): the CLI talks to the metrics
 * listener with Node's fetch, so `blocks` and `top` cannot reach one of these.
 * test/unit/config/sanity.test.ts checks the list against the Node that runs.
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117,
  119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636,
  989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

export function exposureWarnings(rt: RuntimeConfig): ConfigIssue[] {
  const m = rt.metricsListen;
  const out: ConfigIssue[] = [];
  if (!isLoopback(m.host)) {
    out.push({
      path: 'metrics.listen',
      message: `${formatHostPort(m)} is not loopback: metrics, the dashboard and /api/top (client addresses) are readable by anyone who reaches it; firewall it to your Prometheus (block changes stay loopback-only)`,
    });
  }
  if (FETCH_BLOCKED_PORTS.has(m.port)) {
    out.push({
      path: 'metrics.listen',
      message: `port ${m.port} is one that fetch refuses (a port browsers block): \`ampguard blocks\` and \`ampguard top\` cannot reach the listener there; give it another port`,
    });
  }
  return out;
}
