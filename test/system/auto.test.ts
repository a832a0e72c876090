// block.mode auto: ipset where the kernel lets us, else userspace with one
// warning, and userspace blocking that still stops the flood's answers.
import { afterEach, describe, expect, it } from 'vitest';
import { createHosts, kernelUnavailable, SERVER_V4, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { startServerHost } from '../helpers/server-host.js';
import { dig } from '../helpers/dig.js';
import { stopAll } from '../helpers/process.js';
import { blast, until } from '../helpers/blast.js';
import { poll } from '../helpers/poll.js';

const unavailable = kernelUnavailable();
const [FLOODER, NEIGHBOUR] = CLIENTS_V4 as [string, string];
let hosts: Hosts | undefined;

afterEach(async () => {
  await stopAll();
  hosts?.destroy();
});

async function start(h: Hosts) {
  return (await startServerHost(h, { block: { mode: 'auto', timeout: 60 } })).ag;
}

describe.skipIf(unavailable !== null)('block.mode auto', () => {
  it('uses ipset when the kernel allows it', async () => {
    hosts = createHosts();
    const ag = await start(hosts);
    expect(ag.proc.output()).toMatch(/"block_mode":"ipset"/);
    expect(await ag.metric('ampguard_enforcement_mode{mode="ipset"}')).toBe(1);
    expect(await ag.metric('ampguard_enforcement_mode{mode="userspace"}')).toBe(0);
  });

  it('falls back to userspace with one warning, and userspace still blocks', async () => {
    hosts = createHosts();
    // a set of the same name and another type: `ipset create -exist` must fail
    hosts.run(hosts.server, 'ipset', ['create', 'throttled-ips', 'hash:net']);
    const ag = await start(hosts);
    expect(ag.proc.output()).toMatch(/"block_mode":"userspace"/);
    expect(ag.proc.output().match(/kernel set not available/g)).toHaveLength(1);
    // what auto chose, for an alert: not the ipset it would have liked
    expect(await ag.metric('ampguard_enforcement_mode{mode="userspace"}')).toBe(1);
    expect(await ag.metric('ampguard_enforcement_mode{mode="ipset"}')).toBe(0);
    // over budget: TC answers first (the ladder), blocked when its window is judged without TCP follow-ups
    expect(blast(hosts, SERVER_V4, FLOODER, 40).truncated).toBeGreaterThanOrEqual(10);
    expect(await until(async () => (await ag.metric('ampguard_blocked_clients')) === 1, 5000)).toBe(true);
    expect(await ag.metric('ampguard_blocks_total{mode="userspace"}')).toBe(1);
    const before = await ag.metric('ampguard_dropped_total{reason="blocked"}');
    expect(blast(hosts, SERVER_V4, FLOODER, 20, 'www.example.test').received).toBe(0);
    // here the flood does reach the process, which drops it (read until it has, on a busy host)
    expect(await poll(() => ag.metric('ampguard_dropped_total{reason="blocked"}'), (n) => n >= before + 20)).toBe(before + 20);
    expect((await dig(SERVER_V4, 53, 'www.example.test', 'A', ['+notcp', '-b', NEIGHBOUR], hosts.client)).status).toBe('NOERROR');
  });
});
