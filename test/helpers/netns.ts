// Two network namespaces joined by a veth pair: a server host (ampguard and its
// recursor) and a client host with several addresses, in 198.18.0.0/24 and
// fd00:a3b1::/64 only. Everything is removed in cleanup, even after a failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const SERVER_V4 = '198.18.0.1';
export const SERVER_V6 = 'fd00:a3b1::1';
export const CLIENTS_V4 = ['198.18.0.10', '198.18.0.11', '198.18.0.12', '198.18.0.13'];
export const CLIENTS_V6 = ['fd00:a3b1::10', 'fd00:a3b1:0:1::11'];

export interface Hosts {
  readonly server: string;
  readonly client: string;
  /** runs a command in a namespace; throws with its stderr on failure */
  run(ns: string, cmd: string, args: string[], input?: string): string;
  /** like run, but returns the exit status instead of throwing */
  tryRun(ns: string, cmd: string, args: string[]): { status: number; out: string };
  destroy(): void;
}

export function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
}

/** Why kernel tests cannot run here, or null when they can. */
export function kernelUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'ipset', 'iptables', 'ip6tables', 'nft']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  const name = `agprobe-${randomBytes(3).toString('hex')}`;
  try {
    run('ip', ['netns', 'add', name]);
    run('ip', ['netns', 'exec', name, 'ipset', 'create', 'probe', 'hash:ip', 'timeout', '5']);
    run('ip', ['netns', 'exec', name, 'iptables', '-w', '-t', 'raw', '-A', 'PREROUTING', '-m', 'set', '--match-set', 'probe', 'src', '-j', 'DROP']);
    run('ip', ['netns', 'exec', name, 'nft', 'add', 'table', 'inet', 'probe']);
    return null;
  } catch (err) {
    return `kernel lacks netns/ipset/raw table/nftables: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
}

export function createHosts(): Hosts {
  const tag = randomBytes(3).toString('hex');
  const server = `agsrv-${tag}`;
  const client = `agcli-${tag}`;
  const vs = `ags${tag}`;
  const vc = `agc${tag}`;
  const hosts: Hosts = {
    server,
    client,
    run: (ns, cmd, args, input) => run('ip', ['netns', 'exec', ns, cmd, ...args], input),
    tryRun: (ns, cmd, args) => {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 20_000 });
      return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
    },
    destroy() {
      // deleting a namespace removes its veth end, sets and rules with it
      spawnSync('ip', ['netns', 'del', server]);
      spawnSync('ip', ['netns', 'del', client]);
    },
  };
  try {
    run('ip', ['netns', 'add', server]);
    run('ip', ['netns', 'add', client]);
    run('ip', ['link', 'add', vs, 'netns', server, 'type', 'veth', 'peer', 'name', vc, 'netns', client]);
    for (const ns of [server, client]) {
      hosts.run(ns, 'ip', ['link', 'set', 'lo', 'up']);
      hosts.run(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    hosts.run(server, 'ip', ['addr', 'add', `${SERVER_V4}/24`, 'dev', vs]);
    hosts.run(server, 'ip', ['-6', 'addr', 'add', `${SERVER_V6}/48`, 'dev', vs, 'nodad']);
    for (const a of CLIENTS_V4) hosts.run(client, 'ip', ['addr', 'add', `${a}/24`, 'dev', vc]);
    for (const a of CLIENTS_V6) hosts.run(client, 'ip', ['-6', 'addr', 'add', `${a}/48`, 'dev', vc, 'nodad']);
    hosts.run(server, 'ip', ['link', 'set', vs, 'up']);
    hosts.run(client, 'ip', ['link', 'set', vc, 'up']);
  } catch (err) {
    hosts.destroy();
    throw err;
  }
  return hosts;
}
