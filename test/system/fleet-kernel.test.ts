// Fleet verdicts in each node's kernel set (docs/fleet.md, "What it
// promises" 2 and 3): three ampguard nodes of one site, each in a network
// namespace of its own with its own pdns_recursor, its own ipset (block.mode
// ipset, a set name per node) and its own raw PREROUTING drop rule, sharing
// verdicts through a real nats-server in a site namespace. The site namespace
// is the routers' side: it holds NATS and the clients, one veth to each node.
//
//   site ns: lo 198.18.0.254 (NATS), 198.18.0.10-13 (clients)
//     veth 198.18.1N.254/24  <->  node N ns: veth 198.18.1N.1/24, default via .254
//                                 ampguard on 198.18.1N.1:53, recursor 127.0.0.1:5300
//
// An operator block on A (`ampguard blocks add`, which proves A's control
// token) must reach B's and C's kernel sets within 2 s, and B's kernel must
// drop the client's queries (the raw rule's packet counter); an unblock on B
// must leave A's kernel set within 2 s; a block made on A while NATS is down
// must be in B's and C's kernel sets within 5 s of NATS coming back. Skipped,
// with the reason, only where the kernel, privileges or nats-server are missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { kernelUnavailable, run } from '../helpers/netns.js';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { CLI, startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { startNats, writeSiteKey, type Nats } from '../helpers/nats.js';
import { stopAll } from '../helpers/process.js';
import { poll } from '../helpers/poll.js';

const BLAST = resolve('test/helpers/udp-blast.mjs');
const unavailable = kernelUnavailable() ?? (spawnSync('sh', ['-c', 'command -v nats-server']).status === 0 ? null : 'nats-server is not installed');
if (unavailable) console.warn(`fleet kernel tests skipped: ${unavailable}`);

const TAG = randomBytes(3).toString('hex');
const SITE_NS = `agsite-${TAG}`;
const NATS_ADDR = '198.18.0.254';
const [HAND, NEIGHBOUR, OUTAGE] = ['198.18.0.10', '198.18.0.11', '198.18.0.12'] as const;
/** a network blocked by hand (at the aggregate length, /24 by default), away from NATS's */
const [NET, IN_NET, IN_NET2] = ['198.18.2.0/24', '198.18.2.10', '198.18.2.77'] as const;

interface Node {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  readonly set: string;
  rec?: Recursor;
  ag?: Ampguard;
}

const nodes: Node[] = ['a', 'b', 'c'].map((name, i) => ({ name, ns: `agfl${name}-${TAG}`, address: `198.18.1${i + 1}.1`, set: `fleet-${name}` }));
const [A, B, C] = nodes as [Node, Node, Node];
let nats: Nats;

const inNs = (ns: string, cmd: string, args: string[], input?: string): string => run('ip', ['netns', 'exec', ns, cmd, ...args], input);

function createSite(): void {
  run('ip', ['netns', 'add', SITE_NS]);
  inNs(SITE_NS, 'ip', ['link', 'set', 'lo', 'up']);
  for (const a of [NATS_ADDR, HAND, NEIGHBOUR, OUTAGE, IN_NET, IN_NET2]) inNs(SITE_NS, 'ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
  nodes.forEach((n, i) => {
    const gw = `198.18.1${i + 1}.254`;
    const [vs, vn] = [`agfs${n.name}${TAG}`, `agfn${n.name}${TAG}`];
    run('ip', ['netns', 'add', n.ns]);
    run('ip', ['link', 'add', vs, 'netns', SITE_NS, 'type', 'veth', 'peer', 'name', vn, 'netns', n.ns]);
    inNs(n.ns, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(SITE_NS, 'ip', ['addr', 'add', `${gw}/24`, 'dev', vs]);
    inNs(n.ns, 'ip', ['addr', 'add', `${n.address}/24`, 'dev', vn]);
    inNs(SITE_NS, 'ip', ['link', 'set', vs, 'up']);
    inNs(n.ns, 'ip', ['link', 'set', vn, 'up']);
    inNs(n.ns, 'ip', ['route', 'add', 'default', 'via', gw]);
  });
}

function destroySite(): void {
  // deleting a namespace removes its veth ends, sets and rules with it
  for (const ns of [SITE_NS, ...nodes.map((n) => n.ns)]) spawnSync('ip', ['netns', 'del', ns]);
}

/** whether `address` is in node n's kernel set, or its network set (`ipset test` exits 0 only then) */
const inKernelSet = (n: Node, address: string, net = false): boolean =>
  spawnSync('ip', ['netns', 'exec', n.ns, 'ipset', 'test', net ? `${n.set}-net` : n.set, address], { timeout: 10_000 }).status === 0;

/** packets node n's raw PREROUTING rule for its set (or its network set) has dropped */
function drops(n: Node, net = false): number {
  const out = inNs(n.ns, 'iptables', ['-w', '-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n']);
  const set = net ? `${n.set}-net` : n.set;
  const line = out.split('\n').find((l) => l.includes(`match-set ${set} src`) && l.includes('DROP'));
  return Number(line?.trim().split(/\s+/)[0] ?? NaN);
}

/** `count` small UDP queries from a client address of the site to node n; the replies it got */
function query(n: Node, src: string, count: number): number {
  const out = inNs(SITE_NS, 'node', [BLAST, n.address, '53', src, String(count), 'www.example.test', 'A', '1232', '20', '700']);
  return (JSON.parse(out) as { received: number }).received;
}

/** the operator's `ampguard blocks add|del` on node n, through its control token */
function operator(n: Node, verb: 'add' | 'del', address: string): string {
  return inNs(n.ns, 'node', [CLI, 'blocks', verb, address, '--config', (n.ag as Ampguard).configPath]);
}

const ag = (n: Node): Ampguard => n.ag as Ampguard;

describe.skipIf(unavailable !== null)('fleet verdicts in every node\'s kernel set', () => {
  beforeAll(async () => {
    createSite();
    nats = await startNats({ netns: SITE_NS, address: NATS_ADDR, port: 4222 });
    const keyFile = writeSiteKey();
    // one after the other: three starting at once on a loaded two-core machine outlast the helper's start deadline
    for (const n of nodes) {
      n.rec = await startRecursor({ netns: n.ns, port: 5300 });
      n.ag = await startAmpguard({
        netns: n.ns,
        port: 53,
        config: {
          listen: { udp: [`${n.address}:53`], tcp: [`${n.address}:53`] },
          backends: [{ address: `127.0.0.1:${n.rec.port}` }],
          health_check: { qname: 'example.test', qtype: 'SOA' },
          block: { mode: 'ipset', set: n.set, timeout: 300 },
          fleet: { nats: [nats.url], site: 'lab', node: n.name, key_file: keyFile },
        },
      });
    }
    for (const n of nodes) expect(await poll(() => ag(n).metric('ampguard_fleet_peers'), (p) => p === 2, 15_000)).toBe(2);
  }, 180_000);

  afterAll(async () => {
    if (process.env.AG_DEBUG) for (const n of nodes) console.log(n.ag?.proc.output().slice(-4000));
    for (const n of nodes) await n.ag?.stop();
    for (const n of nodes) await n.rec?.close();
    await stopAll();
    destroySite();
  });

  it('gives each node its own set and drop rule, and answers the site\'s clients', () => {
    for (const n of nodes) {
      expect(inNs(n.ns, 'ipset', ['list', '-n']).split('\n')).toContain(n.set);
      expect(drops(n)).toBe(0);
      expect(query(n, HAND, 3)).toBe(3);
    }
  });

  it('puts an operator block on A into B\'s and C\'s kernel sets within 2 s, where the kernel drops the client; an unblock on B leaves A\'s set within 2 s', async () => {
    expect(operator(A, 'add', HAND)).toContain(`blocked ${HAND}`);
    expect(inKernelSet(A, HAND) || (await poll(() => inKernelSet(A, HAND), (x) => x, 2000))).toBe(true);
    expect(await poll(() => inKernelSet(B, HAND), (x) => x, 2000)).toBe(true);
    expect(await poll(() => inKernelSet(C, HAND), (x) => x, 2000)).toBe(true);
    expect(inKernelSet(B, NEIGHBOUR)).toBe(false);

    // B's kernel drops the client before B's socket: every query counted by the rule, none reaches ampguard
    const before = drops(B);
    const queries = await poll(() => ag(B).metric('ampguard_queries_total{proto="udp"}'), () => true, 0);
    expect(query(B, HAND, 5)).toBe(0);
    expect(drops(B) - before).toBe(5);
    expect(query(B, NEIGHBOUR, 3)).toBe(3);
    expect(await poll(() => ag(B).metric('ampguard_queries_total{proto="udp"}'), (q) => q >= queries + 3, 5000)).toBe(queries + 3);

    expect(operator(B, 'del', HAND)).toContain(`unblocked ${HAND}`);
    expect(inKernelSet(B, HAND)).toBe(false);
    expect(await poll(() => inKernelSet(A, HAND), (x) => !x, 2000)).toBe(false);
    expect(await poll(() => inKernelSet(C, HAND), (x) => !x, 2000)).toBe(false);
    expect(query(A, HAND, 3)).toBe(3);
  });

  it('puts a network blocked by hand on B into A\'s and C\'s network sets within 2 s, where the kernel drops it; a del on C lifts it on A and B within 2 s', async () => {
    expect(query(A, IN_NET, 3)).toBe(3);
    expect(operator(B, 'add', NET)).toContain(`blocked ${NET}`);
    expect(await poll(() => inKernelSet(A, IN_NET, true), (x) => x, 2000)).toBe(true);
    expect(await poll(() => inKernelSet(C, IN_NET2, true), (x) => x, 2000)).toBe(true);
    // a network, not the one address: not in the address set
    expect(inKernelSet(A, IN_NET)).toBe(false);
    const before = drops(A, true);
    expect(query(A, IN_NET2, 4)).toBe(0);
    expect(drops(A, true) - before).toBe(4);

    // `blocks del ADDRESS` lifts every blocked network that holds it, named: on every node
    const lifted = operator(C, 'del', IN_NET);
    // C's fleet and block log lines if it does not name the network (it did not, when a peer's verdict lifted it first)
    const explain = (): string => `${lifted}C's log:\n${ag(C).proc.output().split('\n').filter((l) => /fleet|by hand|unblocked|198\.18\.2\./.test(l)).slice(-30).join('\n')}`;
    expect(lifted, explain()).toContain(NET);
    expect(await poll(() => inKernelSet(A, IN_NET, true), (x) => !x, 2000)).toBe(false);
    expect(await poll(() => inKernelSet(B, IN_NET, true), (x) => !x, 2000)).toBe(false);
    expect(query(A, IN_NET, 3)).toBe(3);
  });

  it('keeps the kernel sets while NATS is down, and puts a block made on A during the outage into B\'s and C\'s sets within 5 s of its return', async () => {
    await nats.stop();
    for (const n of nodes) expect(await poll(() => ag(n).metric('ampguard_fleet_connected'), (v) => v === 0, 8000)).toBe(0);
    expect(operator(A, 'add', OUTAGE)).toContain(`blocked ${OUTAGE}`);
    expect(await poll(() => inKernelSet(A, OUTAGE), (x) => x, 2000)).toBe(true);
    expect(query(A, OUTAGE, 3)).toBe(0);
    // judging alone: B and C still answer the address, nothing reached them
    expect(inKernelSet(B, OUTAGE)).toBe(false);
    expect(query(B, OUTAGE, 3)).toBe(3);

    await nats.start();
    expect(await poll(() => inKernelSet(B, OUTAGE), (x) => x, 5000)).toBe(true);
    expect(await poll(() => inKernelSet(C, OUTAGE), (x) => x, 5000)).toBe(true);
    const before = drops(C);
    expect(query(C, OUTAGE, 4)).toBe(0);
    expect(drops(C) - before).toBe(4);
    for (const n of nodes) expect(await poll(() => ag(n).metric('ampguard_fleet_peers'), (p) => p === 2, 8000)).toBe(2);
  });
});
