// A remote spoofer cannot get the host's own IPv6 loopback clients dropped. The
// kernel takes datagrams from the wire with any source in ::/64 but the
// IPv4-mapped ones (here ::5, on the client host's veth), and at the default
// prefix_v6 (/64) ::5 shares its budget prefix, 0:0:0:0:0:0:0:0/64, with ::1.
// A spoofed-victim flood "from" ::5 climbs the ladder and is escalated, but the
// ladder never blocks a prefix that holds ::1 (docs/defence.md): the flood gets
// TC answers, and a query from ::1 on the server host is still answered. Real
// ampguard (defaults: two workers, native UDP I/O), real pdns_recursor, network
// namespaces.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { createHosts, kernelUnavailable, SERVER_V6, type Hosts } from '../helpers/netns.js';
import { addClientAddresses } from '../helpers/spread.js';
import { startServerHost } from '../helpers/server-host.js';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { dig } from '../helpers/dig.js';
import { startProc, stopAll } from '../helpers/process.js';
import { until } from '../helpers/blast.js';

const unavailable = kernelUnavailable();
if (unavailable) console.warn(`system tests skipped: ${unavailable}`);

const TRAFFIC = resolve('test/helpers/ladder-traffic.mjs');
const SPOOFED = '::5';

let hosts: Hosts;
let rec: Recursor;
let ag: Ampguard;

describe.skipIf(unavailable !== null)('a spoofed flood from ::/64', () => {
  beforeAll(async () => {
    hosts = createHosts();
    addClientAddresses(hosts, [SPOOFED], [`${SPOOFED}/128`]);
    ({ rec, ag } = await startServerHost(hosts, {}));
  });

  afterAll(async () => {
    await ag?.stop();
    await rec?.close();
    await stopAll();
    hosts?.destroy();
  });

  it('is answered with TC and escalated, but never blocks ::1 (which shares its /64): the host\'s own ::1 query is answered', async () => {
    const ask = async (): Promise<string> => (await dig(SERVER_V6, 53, 'www.example.test', 'A', ['+notcp', '-b', '::1'], hosts.server)).status;
    expect(await ask()).toBe('NOERROR');
    const p = startProc('node', [TRAFFIC, 'victim', SERVER_V6, '53', '6', '200', SPOOFED], { netns: hosts.client });
    if (p.child.exitCode === null) await new Promise((r) => p.child.once('exit', r));
    const flood = JSON.parse(p.output().trim().split('\n').pop() ?? '{}') as { tc?: number };
    expect(flood.tc).toBeGreaterThan(0);
    // the ladder judged the /64 (a window of TC answers without TCP follow-ups)...
    expect(await until(async () => (await ag.metric('ampguard_escalations_total{level="prefix",reason="no_followup"}')) >= 1, 5000)).toBe(true);
    // ...and refused to block it: ::1 is still answered
    expect(await ask()).toBe('NOERROR');
    expect(await ag.metric('ampguard_blocked_clients')).toBe(0);
    expect(await ag.metric('ampguard_blocks_refused_total{reason="invalid"}')).toBeGreaterThanOrEqual(1);
    expect(ag.proc.output()).toMatch(/"prefix":"0:0:0:0:0:0:0:0\/64".*"msg":"prefix not blocked"/);
    expect(ag.proc.output()).not.toMatch(/"msg":"prefix blocked"/);
  }, 40_000);
});
