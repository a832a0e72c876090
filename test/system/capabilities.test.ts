// The systemd unit's promise, checked without systemd: ampguard running as an
// unprivileged user with exactly the unit's ambient capabilities still binds
// port 53, manages the ipset and installs the raw DROP rule. ampguard runs from
// the installed package in a world-readable prefix, as in production: `nobody`
// cannot read a checkout under a private (0700) directory.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHosts, kernelUnavailable, SERVER_V4, CLIENTS_V4, type Hosts } from '../helpers/netns.js';
import { startServerHost } from '../helpers/server-host.js';
import { stopAll } from '../helpers/process.js';
import { blast, until } from '../helpers/blast.js';
import { installPackage, type Installed } from '../helpers/package.js';

const unavailable = kernelUnavailable();
const unit = readFileSync('deploy/systemd/ampguard.service', 'utf8');
const caps = /^AmbientCapabilities=(.*)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
let hosts: Hosts | undefined;
let installed: Installed | undefined;

afterAll(async () => {
  await stopAll();
  hosts?.destroy();
  installed?.remove();
});

describe.skipIf(unavailable !== null)('deploy/systemd/ampguard.service capabilities', () => {
  it('grants bind, net admin and raw only, with no new privileges', () => {
    expect(caps.sort()).toEqual(['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW']);
    expect(unit).toMatch(/^User=ampguard$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW$/m);
  });

  it('runs as nobody with those capabilities, on port 53, blocking in the kernel', async () => {
    installed = installPackage();
    hosts = createHosts();
    const list = caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
    const { ag } = await startServerHost(hosts, { block: { mode: 'ipset', set: 'unpriv' }, policy: { ladder: { enabled: false } } }, {
      cli: installed.cli,
      wrap: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', `--inh-caps=${list}`, `--ambient-caps=${list}`, '--bounding-set=-all,' + list, '--no-new-privs'],
    });
    expect(ag.proc.output()).toMatch(/"block_mode":"ipset"/);
    // `ip netns exec` and setpriv both exec, so the child's pid is node's
    const status = readFileSync(`/proc/${ag.proc.child.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\t65534\t65534/m);
    expect(status).toMatch(/^CapEff:\t0000000000003400$/m); // NET_BIND_SERVICE(10) NET_ADMIN(12) NET_RAW(13)
    blast(hosts, SERVER_V4, CLIENTS_V4[0] as string, 40);
    expect(await until(() => hosts!.run(hosts!.server, 'ipset', ['list', 'unpriv']).includes(CLIENTS_V4[0] as string), 3000)).toBe(true);
    expect(hosts.run(hosts.server, 'iptables', ['-t', 'raw', '-S', 'PREROUTING'])).toContain('--match-set unpriv src -j DROP');
  }, 300_000);
});
