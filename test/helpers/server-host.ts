// The server namespace of the system tests: a recursor on 127.0.0.1:5300 and
// ampguard on port 53 of the server's IPv4 and IPv6 addresses.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createHosts, SERVER_V4, SERVER_V6, type Hosts } from './netns.js';
import { startRecursor, type Recursor } from './recursor.js';
import { startAmpguard, type Ampguard, type AmpguardOptions } from './ampguard.js';
import { stopAll } from './process.js';

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

/** Stops what a system test started, each part even when an earlier step of its setup failed. */
export async function stopServerHost(parts: { ag?: Ampguard | null; rec?: Recursor; recs?: Recursor[]; hosts?: Hosts }): Promise<void> {
  await parts.ag?.stop();
  await parts.rec?.close();
  for (const r of parts.recs ?? []) await r.close();
  await stopAll();
  parts.hosts?.destroy();
}

/** A test file's namespaces, recursor and running ampguard: set by the hooks of serverNamespace. */
export interface ServerStand {
  hosts: Hosts;
  rec: Recursor;
  ag: Ampguard | null;
}

/**
 * The hooks of a describe block whose tests each start their own ampguard:
 * fresh namespaces (then `setup`) and a recursor before all, the test's
 * ampguard stopped after each, everything stopped and removed after all.
 */
export function serverNamespace(stand: ServerStand, setup: (hosts: Hosts) => void = () => {}): void {
  beforeAll(async () => {
    stand.hosts = createHosts();
    setup(stand.hosts);
    stand.rec = await startRecursor({ netns: stand.hosts.server, port: 5300 });
  });

  afterEach(async () => {
    await stand.ag?.stop();
    stand.ag = null;
  });

  afterAll(() => stopServerHost(stand));
}

/** An empty stand for serverNamespace to fill. */
export function serverStand(): ServerStand {
  return { hosts: undefined as unknown as Hosts, rec: undefined as unknown as Recursor, ag: null };
}
