// The kernel sinks against a fake `ipset`/`nft` that answers as the real tools
// do: a refused line never sinks its batch, a batch-wide failure is retried
// whole, a full set refuses the rest, and a set left with other parameters is
// rebuilt with its members.
import { describe, expect, it } from 'vitest';
import type { Exec, ExecResult } from '../../../src/enforce/exec.js';
import { IpsetSink, parseIpsetHeader } from '../../../src/enforce/ipset.js';
import { NftablesSink } from '../../../src/enforce/nftables.js';
import type { KernelEntry } from '../../../src/enforce/sink.js';
import type { KernelSettings } from '../../../src/kernel/settings.js';

const k: KernelSettings = { set: 'throttled-ips', set6: 'throttled-ips-v6', setNet: 'throttled-ips-net', setNet6: 'throttled-ips-net-v6', timeoutSec: 600, maxElements: 3, prefixV4: 32, prefixV6: 64, udpPorts: [53] };
const ok = (stdout = ''): ExecResult => ({ ok: true, code: 0, stdout, stderr: '' });
const fail = (stderr: string): ExecResult => ({ ok: false, code: 1, stdout: '', stderr });
const e4 = (a: string, t = 600): KernelEntry => ({ prefix: a, family: 4, timeoutSec: t });
const net = (prefix: string, family: 4 | 6 = 4, t = 600): KernelEntry => ({ prefix, family, timeoutSec: t, network: true });

/** `ipset restore` as it behaves: lines in order, stops at the first refused one and names it. */
function fakeIpset(opts: { capacity?: number; broken?: string } = {}): { exec: Exec; members: Set<string>; calls: string[][] } {
  const members = new Set<string>();
  const calls: string[][] = [];
  const exec: Exec = async (cmd, args, input) => {
    calls.push([cmd, ...args]);
    if (cmd !== 'ipset' || args[0] !== 'restore') return ok();
    if (opts.broken) return fail(`ipset v7.17: ${opts.broken}`);
    const lines = (input ?? '').split('\n').filter(Boolean);
    for (let i = 0; i < lines.length; i++) {
      const ip = (lines[i] as string).split(' ')[2] as string;
      if (ip === '0.0.0.0') return fail(`ipset v7.17: Error in line ${i + 1}: Null-valued element, cannot be stored in a hash type of set`);
      if (!members.has(ip) && members.size >= (opts.capacity ?? Infinity)) return fail(`ipset v7.17: Error in line ${i + 1}: Hash is full, cannot add more elements`);
      members.add(ip);
    }
    return ok();
  };
  return { exec, members, calls };
}

describe('IpsetSink.add', () => {
  it('drops the line ipset refuses and keeps every other entry of the batch', async () => {
    const f = fakeIpset();
    const r = await new IpsetSink(k, f.exec).add([e4('198.18.0.1'), e4('0.0.0.0'), e4('198.18.0.2'), e4('0.0.0.0'), e4('198.18.0.3')]);
    expect(r.ok).toBe(true);
    expect(r.rejected.map((x) => [x.entry.prefix, x.reason])).toEqual([['0.0.0.0', 'invalid'], ['0.0.0.0', 'invalid']]);
    expect([...f.members].sort()).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
    expect(f.calls.filter((c) => c[1] === 'restore')).toHaveLength(3); // one more process per bad line, not per entry
  });

  it('reports the entries past a full set as full', async () => {
    const f = fakeIpset({ capacity: 2 });
    const r = await new IpsetSink(k, f.exec).add([e4('198.18.0.1'), e4('198.18.0.2'), e4('198.18.0.3'), e4('198.18.0.4')]);
    expect(r.ok).toBe(true);
    expect(r.rejected.map((x) => `${x.entry.prefix} ${x.reason}`)).toEqual(['198.18.0.3 full', '198.18.0.4 full']);
  });

  it('returns a batch-wide failure (no permission, no set) as not ok, with everything pending', async () => {
    const f = fakeIpset({ broken: 'Kernel error received: Operation not permitted' });
    const batch = [e4('198.18.0.1'), e4('198.18.0.2')];
    const r = await new IpsetSink(k, f.exec).add(batch);
    expect(r).toMatchObject({ ok: false, rejected: [], pending: batch });
  });
});

describe('IpsetSink.start', () => {
  it('reads a set header, netmask left out at full length', () => {
    expect(parseIpsetHeader('Name: s\nType: hash:ip\nHeader: family inet hashsize 1024 maxelem 2 timeout 300 bucketsize 12\n')).toEqual({
      type: 'hash:ip', family: 'inet', maxElements: 2, netmask: 32, timeoutSec: 300,
    });
  });

  it('rebuilds a set left with another timeout: new set, members with their remaining time, swap, destroy', async () => {
    const calls: string[] = [];
    const inputs: string[] = [];
    const exec: Exec = async (cmd, args, input) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (input) inputs.push(input);
      if (args[0] === 'list' && args[2] === 'throttled-ips') return ok('Name: throttled-ips\nType: hash:ip\nHeader: family inet hashsize 1024 maxelem 3 timeout 300\n');
      if (args[0] === 'list' && args[2]?.includes('-net')) return ok(`Name: x\nType: hash:net\nHeader: family ${args[2].endsWith('-v6') ? 'inet6' : 'inet'} hashsize 1024 maxelem 3 timeout 600\n`);
      if (args[0] === 'list') return ok('Name: x\nType: hash:ip\nHeader: family inet6 hashsize 1024 maxelem 3 netmask 64 timeout 600\n');
      if (args[0] === 'save') return ok('create throttled-ips hash:ip family inet timeout 300\nadd throttled-ips 198.18.0.10 timeout 250\nadd throttled-ips 198.18.0.11 timeout 12\n');
      return ok();
    };
    const r = await new IpsetSink(k, exec).start();
    expect(r.ok).toBe(true);
    expect(r.notes?.[0]).toMatch(/throttled-ips rebuilt \(timeout 300 -> 600.*2 of 2 members kept/);
    const tmp = calls.find((c) => c.startsWith('ipset create ampguard-tmp-'))?.split(' ')[2] as string;
    expect(calls).toContain(`ipset create ${tmp} hash:ip family inet timeout 600 maxelem 3 netmask 32`);
    expect(inputs).toContain(`add ${tmp} 198.18.0.10 timeout 250\nadd ${tmp} 198.18.0.11 timeout 12\n`);
    expect(calls.indexOf(`ipset swap ${tmp} throttled-ips`)).toBeLessThan(calls.lastIndexOf(`ipset destroy ${tmp}`));
    // the IPv6 set matched already: left alone
    expect(calls.some((c) => c.includes('swap') && c.includes('-v6'))).toBe(false);
  });

  it('refuses a set of another type under our name rather than touching it', async () => {
    const exec: Exec = async (_cmd, args) => (args[0] === 'list' ? ok('Name: throttled-ips\nType: hash:net\nHeader: family inet hashsize 1024 maxelem 3\n') : ok());
    const r = await new IpsetSink(k, exec).start();
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/hash:net/);
  });
});

describe('NftablesSink', () => {
  it('retries a refused batch entry by entry and keeps the good ones', async () => {
    const added: string[] = [];
    const exec: Exec = async (_cmd, _args, input) => {
      if ((input ?? '').includes('198.18.0.66')) return fail('/dev/stdin:1:40-50: Error: Could not resolve hostname: Address family for hostname not supported');
      added.push(...[...(input ?? '').matchAll(/(\d+\.\d+\.\d+\.\d+) timeout/g)].map((m) => m[1] as string));
      return ok();
    };
    const r = await new NftablesSink(k, exec).add([e4('198.18.0.1'), e4('198.18.0.66'), e4('198.18.0.2')]);
    expect(r.ok).toBe(true);
    expect(r.rejected.map((x) => x.entry.prefix)).toEqual(['198.18.0.66']);
    expect(added).toEqual(['198.18.0.1', '198.18.0.2']);
  });

  it('rebuilds a set left with another timeout in one transaction, members re-keyed to the prefix and kept', async () => {
    const scripts: string[] = [];
    const k24 = { ...k, prefixV4: 24 };
    const exec: Exec = async (_cmd, args, input) => {
      if (args[0] === '-j' && args[5] === 'throttled-ips') {
        return ok(JSON.stringify({ nftables: [{ set: { name: 'throttled-ips', timeout: 300, size: 3, elem: [{ elem: { val: '198.18.0.10', timeout: 300, expires: 200 } }, { elem: { val: '198.18.0.11', timeout: 300, expires: 100 } }] } }] }));
      }
      if (args[0] === '-j') return fail('Error: No such file or directory');
      if (input) scripts.push(input);
      return ok();
    };
    const r = await new NftablesSink(k24, exec).start();
    expect(r.ok).toBe(true);
    expect(scripts).toHaveLength(1);
    const script = scripts[0] as string;
    expect(script.indexOf('flush chain inet ampguard prerouting')).toBeLessThan(script.indexOf('delete set inet ampguard throttled-ips'));
    expect(script).toMatch(/add set inet ampguard throttled-ips \{ type ipv4_addr; flags timeout; timeout 600s; size 3; \}/);
    expect(script).toContain('add element inet ampguard throttled-ips { 198.18.0.0 timeout 200s }');
    expect(script).not.toContain('delete set inet ampguard throttled-ips-v6');
  });
});

describe('network entries (aggregate blocks)', () => {
  it('ipset: a batch puts networks into the hash:net sets and prefixes into the hash:ip sets', async () => {
    const inputs: string[] = [];
    const exec: Exec = async (_cmd, _args, input) => {
      if (input) inputs.push(input);
      return ok();
    };
    const r = await new IpsetSink(k, exec).add([net('198.18.2.0/24'), e4('198.18.0.1'), net('fd00:a3b2:0:0:0:0:0:0/48', 6, 30)]);
    expect(r.ok).toBe(true);
    expect(inputs).toEqual([
      'add throttled-ips-net 198.18.2.0/24 timeout 600\n' +
        'add throttled-ips 198.18.0.1 timeout 600\n' +
        'add throttled-ips-net-v6 fd00:a3b2:0:0:0:0:0:0/48 timeout 30\n',
    ]);
  });

  it('ipset: start creates the hash:net sets and a raw DROP rule for each of the four sets', async () => {
    const calls: string[] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      // nothing exists yet: list and the rule checks fail
      return args[0] === 'list' || args.includes('-C') ? fail('The set with the given name does not exist') : ok();
    };
    expect((await new IpsetSink(k, exec).start()).ok).toBe(true);
    expect(calls).toContain('ipset create throttled-ips-net hash:net family inet timeout 600 maxelem 3 -exist');
    expect(calls).toContain('ipset create throttled-ips-net-v6 hash:net family inet6 timeout 600 maxelem 3 -exist');
    expect(calls).toContain('ipset create throttled-ips hash:ip family inet timeout 600 maxelem 3 netmask 32 -exist');
    expect(calls).toContain('iptables -w -t raw -I PREROUTING 1 -p udp --dport 53 -m set --match-set throttled-ips-net src -j DROP');
    expect(calls).toContain('ip6tables -w -t raw -I PREROUTING 1 -p udp --dport 53 -m set --match-set throttled-ips-net-v6 src -j DROP');
    expect(calls.filter((c) => c.includes(' -I PREROUTING'))).toHaveLength(4);
  });

  it('ipset: rebuilds a network set left with another timeout, keeping its networks', async () => {
    const calls: string[] = [];
    const inputs: string[] = [];
    const exec: Exec = async (cmd, args, input) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (input) inputs.push(input);
      if (args[0] === 'list' && args[2] === 'throttled-ips-net') return ok('Name: throttled-ips-net\nType: hash:net\nHeader: family inet hashsize 1024 maxelem 3 timeout 300\n');
      if (args[0] === 'list' && args[2] === 'throttled-ips-net-v6') return ok('Name: x\nType: hash:net\nHeader: family inet6 hashsize 1024 maxelem 3 timeout 600\n');
      if (args[0] === 'list' && args[2] === 'throttled-ips') return ok('Name: x\nType: hash:ip\nHeader: family inet hashsize 1024 maxelem 3 timeout 600\n');
      if (args[0] === 'list') return ok('Name: x\nType: hash:ip\nHeader: family inet6 hashsize 1024 maxelem 3 netmask 64 timeout 600\n');
      if (args[0] === 'save') return ok('create throttled-ips-net hash:net family inet timeout 300\nadd throttled-ips-net 198.18.2.0/24 timeout 250\n');
      return ok();
    };
    const r = await new IpsetSink(k, exec).start();
    expect(r.ok).toBe(true);
    expect(r.notes).toEqual([expect.stringMatching(/throttled-ips-net rebuilt \(timeout 300 -> 600, maxelem 3 -> 3\): 1 of 1 members kept/)]);
    const tmp = calls.find((c) => c.startsWith('ipset create ampguard-tmp-'))?.split(' ')[2] as string;
    expect(calls).toContain(`ipset create ${tmp} hash:net family inet timeout 600 maxelem 3`);
    expect(inputs).toContain(`add ${tmp} 198.18.2.0/24 timeout 250\n`);
    expect(calls).toContain(`ipset swap ${tmp} throttled-ips-net`);
  });

  it('ipset: lists networks marked as such, and removes one from its set', async () => {
    const calls: string[] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (args[0] !== 'save') return ok();
      if (args[1] === 'throttled-ips-net') return ok('create throttled-ips-net hash:net family inet\nadd throttled-ips-net 198.18.2.0/24 timeout 100\n');
      if (args[1] === 'throttled-ips-net-v6') return ok('create x hash:net family inet6\nadd throttled-ips-net-v6 fd00:a3b2::/48 timeout 90\n');
      if (args[1] === 'throttled-ips') return ok('add throttled-ips 198.18.0.5 timeout 80\n');
      return ok('');
    };
    const sink = new IpsetSink(k, exec);
    expect(await sink.list()).toEqual([
      { prefix: '198.18.0.5', family: 4, timeoutSec: 80 },
      { prefix: '198.18.2.0/24', family: 4, timeoutSec: 100, network: true },
      { prefix: 'fd00:a3b2::/48', family: 6, timeoutSec: 90, network: true },
    ]);
    expect((await sink.remove({ prefix: '198.18.2.0/24', family: 4, network: true })).ok).toBe(true);
    expect(calls).toContain('ipset del throttled-ips-net 198.18.2.0/24 -exist');
  });

  it('nftables: a batch adds networks to the interval sets, and they are listed and removed as networks', async () => {
    const scripts: string[] = [];
    const exec: Exec = async (_cmd, args, input) => {
      if (input) scripts.push(input);
      if (args[0] !== '-j') return ok();
      const name = args[5];
      if (name === 'throttled-ips-net') {
        return ok(JSON.stringify({ nftables: [{ set: { name, flags: ['interval', 'timeout'], elem: [{ elem: { val: { prefix: { addr: '198.18.2.0', len: 24 } }, timeout: 600, expires: 590 } }, { elem: { val: '198.18.3.4', expires: 10 } }] } }] }));
      }
      if (name === 'throttled-ips-net-v6') return ok(JSON.stringify({ nftables: [{ set: { name, elem: [{ elem: { val: { prefix: { addr: 'fd00:a3b2::', len: 48 } }, expires: 20 } }] } }] }));
      return ok(JSON.stringify({ nftables: [{ set: { name } }] }));
    };
    const sink = new NftablesSink(k, exec);
    expect((await sink.add([net('198.18.2.0/24'), e4('198.18.0.1'), net('fd00:a3b2:0:0:0:0:0:0/48', 6, 30)])).ok).toBe(true);
    // each set: added (a no-op when there), deleted and added anew, so a re-block refreshes the kernel's expiry
    expect(scripts[0]).toBe(
      'add element inet ampguard throttled-ips { 198.18.0.1 }\n' +
        'delete element inet ampguard throttled-ips { 198.18.0.1 }\n' +
        'add element inet ampguard throttled-ips { 198.18.0.1 timeout 600s }\n' +
        'add element inet ampguard throttled-ips-net { 198.18.2.0/24 }\n' +
        'delete element inet ampguard throttled-ips-net { 198.18.2.0/24 }\n' +
        'add element inet ampguard throttled-ips-net { 198.18.2.0/24 timeout 600s }\n' +
        'add element inet ampguard throttled-ips-net-v6 { fd00:a3b2:0:0:0:0:0:0/48 }\n' +
        'delete element inet ampguard throttled-ips-net-v6 { fd00:a3b2:0:0:0:0:0:0/48 }\n' +
        'add element inet ampguard throttled-ips-net-v6 { fd00:a3b2:0:0:0:0:0:0/48 timeout 30s }\n',
    );
    expect(await sink.list()).toEqual([
      { prefix: '198.18.2.0/24', family: 4, timeoutSec: 590, network: true },
      { prefix: '198.18.3.4', family: 4, timeoutSec: 10, network: true },
      { prefix: 'fd00:a3b2::/48', family: 6, timeoutSec: 20, network: true },
    ]);
    await sink.remove({ prefix: '198.18.2.0/24', family: 4, network: true });
    expect(scripts.at(-1)).toBe('delete element inet ampguard throttled-ips-net { 198.18.2.0/24 }\n');
  });

  it('nftables: start creates the interval sets and their drop rules; a stale network set is rebuilt with its networks', async () => {
    const scripts: string[] = [];
    const exec: Exec = async (_cmd, args, input) => {
      if (input) scripts.push(input);
      if (args[0] === '-j' && args[5] === 'throttled-ips-net') {
        return ok(JSON.stringify({ nftables: [{ set: { name: 'throttled-ips-net', timeout: 300, size: 3, elem: [{ elem: { val: { prefix: { addr: '198.18.2.0', len: 24 } }, expires: 200 } }] } }] }));
      }
      if (args[0] === '-j') return fail('Error: No such file or directory');
      return ok();
    };
    const r = await new NftablesSink(k, exec).start();
    expect(r.ok).toBe(true);
    const script = scripts[0] as string;
    expect(script).toContain('add set inet ampguard throttled-ips-net { type ipv4_addr; flags interval, timeout; timeout 600s; size 3; }');
    expect(script).toContain('add set inet ampguard throttled-ips-net-v6 { type ipv6_addr; flags interval, timeout; timeout 600s; size 3; }');
    expect(script).toContain('add rule inet ampguard prerouting udp dport { 53 } ip saddr @throttled-ips-net counter drop');
    expect(script).toContain('add rule inet ampguard prerouting udp dport { 53 } ip6 saddr @throttled-ips-net-v6 counter drop');
    expect(script.indexOf('delete set inet ampguard throttled-ips-net')).toBeGreaterThan(script.indexOf('flush chain inet ampguard prerouting'));
    expect(script).toContain('add element inet ampguard throttled-ips-net { 198.18.2.0/24 timeout 200s }');
    expect(r.notes?.[0]).toMatch(/throttled-ips-net rebuilt \(timeout 300s -> 600s, size 3 -> 3\): 1 of 1 members kept/);
  });
});
