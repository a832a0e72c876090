// The graduated defence (docs/defence.md) at the default config, in network
// namespaces against a real pdns_recursor, with real ipset: a busy NAT address
// whose stubs retry over TCP is answered and never blocked; a spoofed victim
// and a flood spread over 200 addresses of one /24 get no more bytes than the
// attacker sent once the first 2 s are past; the victim ends up in the kernel
// set, the /24 is answered with TC and never blocked; a stub that never
// retries over TCP, at a low rate, is never blocked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, CLIENTS_V6, type Hosts } from '../helpers/netns.js';
import { startServerHost, stopServerHost } from '../helpers/server-host.js';
import { addSpreadNetwork } from '../helpers/spread.js';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { amplifiedSeconds, traffic } from '../helpers/ladder-load.js';
import { until } from '../helpers/blast.js';

const unavailable = kernelUnavailable();
if (unavailable) console.warn(`system tests skipped: ${unavailable}`);

const [NAT, VICTIM, STUB] = CLIENTS_V4 as [string, string, string];
const VICTIM6 = CLIENTS_V6[0] as string;

let hosts: Hosts;
let rec: Recursor;
let ag: Ampguard;
let spread: string[];

function members(set: string): string {
  return hosts.run(hosts.server, 'ipset', ['list', set]);
}

describe.skipIf(unavailable !== null)('the ladder at the default config (ipset)', () => {
  beforeAll(async () => {
    hosts = createHosts();
    spread = addSpreadNetwork(hosts, '198.18.2', 200);
    ({ rec, ag } = await startServerHost(hosts, {}));
  });

  afterAll(() => stopServerHost({ ag, rec, hosts }));

  it('answers a busy NAT address in full for 30 s and never blocks it; a stub that never retries over TCP is not blocked either', async () => {
    const [nat, stub] = await Promise.all([
      traffic(hosts, 'nat', SERVER_V4, 30, 300, [NAT]),
      traffic(hosts, 'stub', SERVER_V4, 20, 0.5, [STUB]),
    ]);
    console.log(`NAT: ${JSON.stringify({ ...nat, perSecond: undefined })}`);
    // it did go over budget and climb the ladder: this is not a quiet client
    expect(nat.tc).toBeGreaterThan(100);
    expect(nat.viaTcp).toBeGreaterThan(100);
    expect(await ag.metric('ampguard_truncated_total{reason="budget"}')).toBeGreaterThan(0);
    expect(await ag.metric('ampguard_tcp_followups_total')).toBeGreaterThan(0);
    expect(nat.full / nat.lookups).toBeGreaterThanOrEqual(0.995);
    expect(members('throttled-ips')).not.toContain(NAT);
    expect(stub.full).toBe(stub.lookups);
    expect(members('throttled-ips')).not.toContain(STUB);
    expect(await ag.metric('ampguard_blocked_clients')).toBe(0);
  });

  it('gives a spoofed victim no more bytes than the attacker sent after 2 s, and blocks it in the kernel', async () => {
    const v = await traffic(hosts, 'victim', SERVER_V4, 8, 200, [VICTIM]);
    console.log(`victim per second: ${JSON.stringify(v.perSecond)}`);
    expect(amplifiedSeconds(v, 2)).toEqual([]);
    expect(await until(() => members('throttled-ips').includes(VICTIM), 5000)).toBe(true);
    expect(ag.proc.output()).toMatch(new RegExp(`"address":"${VICTIM.replace(/\./g, '\\.')}".*"msg":"prefix blocked"`));
    expect(await ag.metric('ampguard_escalations_total{level="prefix",reason="no_followup"}')).toBeGreaterThanOrEqual(1);
  });

  it('does the same for an IPv6 victim, blocking its /64', async () => {
    const v = await traffic(hosts, 'victim', SERVER_V6, 8, 200, [VICTIM6]);
    expect(amplifiedSeconds(v, 2)).toEqual([]);
    expect(await until(() => members('throttled-ips-v6').includes('fd00:a3b1::'), 5000)).toBe(true);
  });

  it('catches a flood spread over 200 addresses of one /24, each under its own budget, by the aggregate: TC, not a block', async () => {
    // one query a second from each address: half are ~900-byte TXT, 450 bytes/s each, under 50kb/min
    const v = await traffic(hosts, 'victim', SERVER_V4, 8, 200, spread);
    console.log(`spread flood per second: ${JSON.stringify(v.perSecond)}`);
    expect(amplifiedSeconds(v, 2)).toEqual([]);
    expect(v.tc).toBeGreaterThan(500);
    // a network is answered with TC for its large replies and never put in the kernel (docs/defence.md)
    expect(await ag.metric('ampguard_escalations_total{level="aggregate",reason="no_followup"}')).toBe(0);
    expect(members('throttled-ips-net')).not.toContain('198.18.2.0/24');
    expect(members('throttled-ips')).not.toMatch(/198\.18\.2\./);
  });
});
