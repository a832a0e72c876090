// At start, what the other kernel mode left behind for the same set names: a
// restart with block.mode changed from ipset to nftables (or back) used to
// leave the old sets and DROP rules dropping clients that no listing showed
// and no `blocks del` removed. Their members are carried into the new mode's
// sets with the time each has left, then the old rules, sets or table are
// removed. docs/enforcement.md, "A change of block.mode".
import type { Logger } from 'pino';
import { describeFailure, type Exec } from './exec.js';
import { prefixAddress, type BlockSink, type KernelEntry } from './sink.js';
import { parseIpsetHeaders, parseIpsetSave } from './ipset.js';
import { inspectNftTable } from './nftables.js';
import { NFT_TABLE } from '../kernel/rules.js';
import type { KernelSettings } from '../kernel/settings.js';
import { prefixKey } from '../policy/prefix.js';

interface Leftovers {
  /** the old members, keyed for the new sets, with the time each has left */
  readonly members: KernelEntry[];
  /** rules, sets or tables removed */
  readonly removed: number;
  readonly notes: string[];
}

interface SetSpec {
  readonly name: string;
  readonly family: 4 | 6;
  readonly network: boolean;
}

function specs(k: KernelSettings): SetSpec[] {
  return [
    { name: k.set, family: 4, network: false },
    { name: k.set6, family: 6, network: false },
    { name: k.setNet, family: 4, network: true },
    { name: k.setNet6, family: 6, network: true },
  ];
}

/** a member keyed for the new sets: a budget prefix at the configured length (nft needs it masked), a network as it is */
function rekey(e: KernelEntry, k: KernelSettings): KernelEntry {
  const timeoutSec = e.timeoutSec > 0 ? e.timeoutSec : k.timeoutSec;
  if (e.network) return { ...e, timeoutSec };
  return { prefix: prefixAddress(prefixKey(prefixAddress(e.prefix), e.family, k.prefixV4, k.prefixV6)), family: e.family, timeoutSec };
}

/** the four sets of ipset mode that exist, with their members */
async function readIpset(k: KernelSettings, exec: Exec): Promise<{ sets: SetSpec[]; members: KernelEntry[] }> {
  const listed = await exec('ipset', ['list', '-t']);
  if (!listed.ok) return { sets: [], members: [] };
  const present = parseIpsetHeaders(listed.stdout);
  const sets = specs(k).filter((s) => present.has(s.name));
  const members: KernelEntry[] = [];
  for (const s of sets) {
    const saved = await exec('ipset', ['save', s.name]);
    if (saved.ok) members.push(...parseIpsetSave(saved.stdout, s.family, s.network).map((e) => rekey(e, k)));
  }
  return { sets, members };
}

/** every raw PREROUTING DROP rule naming one of the sets, then the sets */
async function removeIpset(sets: readonly SetSpec[], exec: Exec, log: Logger): Promise<number> {
  let removed = 0;
  for (const tool of ['iptables', 'ip6tables'] as const) {
    const rules = await exec(tool, ['-w', '-t', 'raw', '-S', 'PREROUTING']);
    if (!rules.ok) continue;
    for (const line of rules.stdout.split('\n')) {
      const words = line.split(' ');
      const set = words[words.indexOf('--match-set') + 1];
      if (words[0] !== '-A' || !line.endsWith(' -j DROP') || !sets.some((s) => s.name === set)) continue;
      const args = ['-w', '-t', 'raw', '-D', ...words.slice(1)];
      const r = await exec(tool, args);
      if (r.ok) removed++;
      else log.warn({ err: describeFailure(tool, args, r) }, 'could not remove a DROP rule block.mode ipset left');
    }
  }
  for (const s of sets) {
    const r = await exec('ipset', ['destroy', s.name]);
    if (r.ok) removed++;
    else log.warn({ err: describeFailure('ipset', ['destroy', s.name], r) }, 'could not remove an ipset block.mode ipset left');
  }
  return removed;
}

/** nftables mode's table with its members, when it holds only our sets (null: none, or shared with another block.set) */
async function readNft(k: KernelSettings, exec: Exec, log: Logger): Promise<KernelEntry[] | null> {
  const listed = await exec('nft', ['-j', 'list', 'table', 'inet', NFT_TABLE]);
  if (!listed.ok) return null;
  const names = new Set(specs(k).map((s) => s.name));
  let others: string[];
  try {
    const doc = JSON.parse(listed.stdout) as { nftables?: { set?: { name?: string } }[] };
    others = (doc.nftables ?? []).flatMap((x) => (x.set?.name !== undefined && !names.has(x.set.name) ? [x.set.name] : []));
  } catch {
    return null;
  }
  if (others.length > 0) {
    log.warn({ table: `inet ${NFT_TABLE}`, sets: others }, 'the nftables table of block.mode nftables holds sets of another block.set: left alone');
    return null;
  }
  const look = inspectNftTable(listed.stdout, specs(k), { timeoutSec: k.timeoutSec, size: k.maxElements, udpPorts: k.udpPorts });
  const out: KernelEntry[] = [];
  for (const s of look.sets) {
    for (const [element, timeoutSec] of s.members ?? s.load?.() ?? []) {
      // elementKey spells a network with its length and IPv6 as 8 groups: both are what the sets take
      out.push(rekey(s.network ? { prefix: element, family: s.family, timeoutSec, network: true } : { prefix: element, family: s.family, timeoutSec }, k));
    }
  }
  return out;
}

/**
 * Moves what the other kernel mode left into `sink` (started already, so the
 * members are dropped by the new sets before the old ones go) and removes it.
 */
export async function takeOverLeftovers(sink: BlockSink, k: KernelSettings, exec: Exec, log: Logger): Promise<Leftovers> {
  const none = { members: [], removed: 0, notes: [] };
  if (sink.mode === 'nftables') {
    const { sets, members } = await readIpset(k, exec);
    if (sets.length === 0) return none;
    await carry(sink, members, log);
    const removed = await removeIpset(sets, exec, log);
    return { members, removed, notes: [`block.mode changed: ipset sets ${sets.map((s) => s.name).join(', ')} and their DROP rules removed, ${members.length} members carried over`] };
  }
  if (sink.mode !== 'ipset') return none;
  const members = await readNft(k, exec, log);
  if (members === null) return none;
  await carry(sink, members, log);
  const args = ['delete', 'table', 'inet', NFT_TABLE];
  const r = await exec('nft', args);
  if (!r.ok) {
    log.warn({ err: describeFailure('nft', args, r) }, 'could not remove the nftables table block.mode nftables left');
    return { members, removed: 0, notes: [] };
  }
  return { members, removed: 1, notes: [`block.mode changed: nftables table inet ${NFT_TABLE} removed, ${members.length} members carried over`] };
}

async function carry(sink: BlockSink, members: readonly KernelEntry[], log: Logger): Promise<void> {
  if (members.length === 0) return;
  const r = await sink.add(members);
  if (!r.ok) log.warn({ err: r.error }, 'the members the other block.mode left could not all be carried over');
}
