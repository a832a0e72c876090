// The server namespace of the system tests: a recursor on 127.0.0.1:5300 and
// ampguard on port 53 of the server's IPv4 and IPv6 addresses.
import { SERVER_V4, SERVER_V6, type Hosts } from './netns.js';
import { startRecursor, type Recursor } from './recursor.js';
import { startAmpguard, type Ampguard, type AmpguardOptions } from './ampguard.js';

export interface ServerHost {
  readonly rec: Recursor;
  readonly ag: Ampguard;
}

export function serverConfig(rec: Recursor, config: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: { udp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`], tcp: [`${SERVER_V4}:53`, `[${SERVER_V6}]:53`] },
    backends: [{ address: `127.0.0.1:${rec.port}` }],
    health_check: { qname: 'example.test', qtype: 'SOA' },
    ...config,
  };
}

export async function startServerHost(hosts: Hosts, config: Record<string, unknown>, opts: Pick<AmpguardOptions, 'wrap' | 'cli'> = {}): Promise<ServerHost> {
  const rec = await startRecursor({ netns: hosts.server, port: 5300 });
  const ag = await startAmpguard({ netns: hosts.server, port: 53, config: serverConfig(rec, config), ...opts });
  return { rec, ag };
}
