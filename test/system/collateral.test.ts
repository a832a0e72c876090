// The ladder's cost to the innocent (docs/defence.md, "What an attacker can and
// cannot do with it"), at the default config, in network namespaces against a
// real pdns_recursor, every client a real socket on its own address, measured
// where the answers arrive:
// - a flood spread over 200 addresses of a /24, with a real client of that /24
//   asking for small answers over UDP: the real client keeps its answers, the
//   /24 is answered with TC and never blocked, and no second after the first
//   two delivers more bytes than the flood sent;
// - the same over another /24 for 30 s with a real host of it asking the
//   flooded names over TCP: it cannot vouch for its spoofed neighbours, and
//   the network's refilled bucket releases no further burst while the flood
//   lasts;
// - a spray over 576 /64s of 64 /48s of one IPv6 /32, each /64 and /48 under
//   its own budget: the /32's budget truncates it;
// - with max_tracked 200, a victim asking for large answers beside a spray of
//   2,500 fresh spoofed sources a second gets no more than twice the full
//   replies it gets alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { createHosts, kernelUnavailable, SERVER_V4, SERVER_V6, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { startServerHost, stopServerHost } from '../helpers/server-host.js';
import { addClientAddresses, addSpreadNetwork } from '../helpers/spread.js';
import type { Recursor } from '../helpers/recursor.js';
import type { Ampguard } from '../helpers/ampguard.js';
import { amplifiedSeconds, runOnClient as run, traffic } from '../helpers/ladder-load.js';

const unavailable = kernelUnavailable();
if (unavailable) console.warn(`system tests skipped: ${unavailable}`);

const SPRAY = resolve('test/helpers/spray-udp.py');

describe.skipIf(unavailable !== null)('what the ladder costs the innocent (defaults, ipset)', () => {
  let hosts: Hosts;
  let rec: Recursor;
  let ag: Ampguard;
  let spread: string[];
  let spread3: string[];
  let spray6: string[];
  const REAL = '198.18.2.201';
  const HELPER = '198.18.3.202';

  beforeAll(async () => {
    hosts = createHosts();
    spread = addSpreadNetwork(hosts, '198.18.2', 200);
    spread3 = addSpreadNetwork(hosts, '198.18.3', 200);
    addClientAddresses(hosts, [REAL, HELPER], []);
    // 9 /64s in each of 64 /48s of fd00:b000::/32
    const six: string[] = [];
    for (let n = 0; n < 64; n++) for (let m = 0; m < 9; m++) six.push(`fd00:b000:${n.toString(16)}:${m.toString(16)}::1`);
    spray6 = addClientAddresses(hosts, six, ['fd00:b000::/32']);
    ({ rec, ag } = await startServerHost(hosts, process.env.W1 ? { workers: 1 } : {}));
  });

  afterAll(() => stopServerHost({ ag, rec, hosts }));

  it('keeps answering a real client of a flooded /24, and truncates, never blocks, the /24', async () => {
    // 200 addresses, one query a second each, for 20 s (half ~900-byte TXT: each address under its own budget);
    // a real client of the /24 asking for A records over UDP at 5 a second
    const [flood, real] = await Promise.all([
      traffic(hosts, 'victim', SERVER_V4, 20, 200, spread),
      traffic(hosts, 'small', SERVER_V4, 20, 5, [REAL]),
    ]);
    console.log(`flood per second: ${JSON.stringify(flood.perSecond)}`);
    console.log(`real client: ${JSON.stringify({ ...real, perSecond: undefined })}`);
    expect(real.full / real.lookups).toBeGreaterThanOrEqual(0.99);
    expect(amplifiedSeconds(flood, 2)).toEqual([]);
    // the network was judged by its answers: truncated, not put in the kernel's network set
    expect(flood.tc).toBeGreaterThan(1000);
    expect(hosts.run(hosts.server, 'ipset', ['list', 'throttled-ips-net'])).not.toContain('198.18.2.0/24');
    expect(hosts.run(hosts.server, 'ipset', ['list', 'throttled-ips'])).not.toContain(REAL);
    // the live collateral figure (dashboard, /api/stats): the real client is on TC with its /24 (rung 2 until
    // policy.ladder.quiet_ms after the flood), never blocked
    expect(await ag.metric('ampguard_collateral_clients{state="blocked"}')).toBe(0);
    expect(await ag.metric('ampguard_collateral_clients{state="tc"}')).toBeGreaterThanOrEqual(1);
  });

  it('gives a flooded /24 no more than the flood sent after 2 s for 30 s, though a real host of it asks the same names over TCP', async () => {
    const [flood, helper] = await Promise.all([
      traffic(hosts, 'victim', SERVER_V4, 30, 200, spread3),
      traffic(hosts, 'helper', SERVER_V4, 30, 60, [HELPER]),
    ]);
    console.log(`helper-host flood per second: ${JSON.stringify(flood.perSecond)}`);
    console.log(`helper: ${JSON.stringify({ ...helper, perSecond: undefined })}`);
    expect(helper.full).toBeGreaterThan(0.9 * helper.lookups);
    expect(amplifiedSeconds(flood, 2)).toEqual([]);
    const after2 = flood.perSecond.slice(2, -1);
    expect(after2.reduce((n, s) => n + s.received, 0)).toBeLessThanOrEqual(after2.reduce((n, s) => n + s.sent, 0));
    // its TCP queries repeat questions truncated to its neighbours, never to itself: no follow-up
    expect(await ag.metric('ampguard_tcp_followups_total')).toBe(0);
  });

  it('truncates a spray over 64 /48s of one IPv6 /32, each /64 and /48 under its own budget', async () => {
    const v = await traffic(hosts, 'victim', SERVER_V6, 16, 400, spray6);
    console.log(`IPv6 /32 spray per second: ${JSON.stringify(v.perSecond)}`);
    expect(v.lookups).toBe(6400);
    expect(amplifiedSeconds(v, 2)).toEqual([]);
    expect(hosts.run(hosts.server, 'ipset', ['list', 'throttled-ips-net-v6'])).not.toContain('fd00:b000');
  });
});

describe.skipIf(unavailable !== null)('a budget table under a spray of fresh sources (max_tracked 200, ipset)', () => {
  let hosts: Hosts;
  let rec: Recursor;
  let ag: Ampguard;
  const [, , ALONE, SPRAYED] = CLIENTS_V4 as [string, string, string, string];

  beforeAll(async () => {
    hosts = createHosts();
    // the spray's answers go to 198.19.0.0/16 on the client host, which drops them
    hosts.run(hosts.server, 'ip', ['route', 'add', '198.19.0.0/16', 'dev', hosts.run(hosts.server, 'ip', ['-o', 'link', 'show', 'type', 'veth']).split(':')[1]!.trim().split('@')[0]!]);
    ({ rec, ag } = await startServerHost(hosts, { policy: { large_response: { max_tracked: 200 } } }));
  });

  afterAll(() => stopServerHost({ ag, rec, hosts }));

  it('gives a victim no more than twice the full replies it gets alone', async () => {
    // a stub asking for ~900-byte TXT at 10 a second for 20 s, never retrying over TCP
    const alone = await traffic(hosts, 'stub', SERVER_V4, 20, 10, [ALONE]);
    const [sprayed, sent] = await Promise.all([
      traffic(hosts, 'stub', SERVER_V4, 20, 10, [SPRAYED]),
      run(hosts, 'python3', [SPRAY, '198.19.0.1', SERVER_V4, '53', 'medium.example.test', '2500', '21']),
    ]);
    console.log(`alone: ${alone.full} full of ${alone.lookups}; beside the spray (${sent.trim()} sent): ${sprayed.full} full of ${sprayed.lookups}`);
    expect(alone.full).toBeGreaterThanOrEqual(10);
    expect(Number(sent.trim())).toBeGreaterThan(40_000);
    expect(sprayed.full).toBeLessThanOrEqual(2 * alone.full);
  });
});
