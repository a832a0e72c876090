// The nftables sink: an `inet ampguard` table with timeout sets (interval
// sets <set>-net and <set>-net-v6 for the networks the aggregate budgets
// block, docs/defence.md) and a prerouting chain at raw priority (before conntrack), fed in batches with one
// `nft -f -` per batch. docs/enforcement.md: a batch nft refuses is retried
// entry by entry, and sets left by an earlier run with another timeout, size
// or prefix are rebuilt at start with their members.
import { describeFailure, type Exec } from './exec.js';
import { elementKey, entryRefusal, kernelElement, prefixAddress, type AddResult, type BlockSink, type KernelEntry, type KernelLook, type MissingPart, type RejectedEntry, type SetLook, type SinkResult } from './sink.js';
import { kernelSetName, kernelSets, type KernelSet, type KernelSettings } from '../kernel/settings.js';
import { NFT_TABLE, nftEnforcementScript } from '../kernel/rules.js';
import { prefixKey } from '../policy/prefix.js';
import { ipToBigInt } from '../net/cidr.js';

/** "fd00::" and "fd00:0:0:0:0:0:0:0" are one address */
function sameAddress(a: string, b: string): boolean {
  return a === b || ipToBigInt(a)?.value === ipToBigInt(b)?.value;
}

/** An existing set: its parameters and members, from `nft -j list set`. */
interface NftSetState {
  readonly timeoutSec: number;
  readonly size: number;
  readonly members: KernelEntry[];
}

export class NftablesSink implements BlockSink {
  readonly mode = 'nftables' as const;

  constructor(private readonly k: KernelSettings, private readonly exec: Exec) {}

  setName(family: 4 | 6, network = false): string {
    return kernelSetName(this.k, family, network);
  }

  /** the four sets: per-prefix and networks, per family */
  private get specs(): KernelSet[] {
    return kernelSets(this.k);
  }

  private async run(script: string): Promise<SinkResult> {
    const r = await this.exec('nft', ['-f', '-'], script);
    return r.ok ? { ok: true } : { ok: false, error: describeFailure('nft', ['-f', '-'], r) };
  }

  /**
   * Creates the table, sets and chain, in one transaction. A set that exists
   * with another timeout or size, or whose members are keyed for another
   * prefix length, is deleted and created anew in the same transaction with
   * its members (re-keyed, with their remaining timeouts): the rules are
   * flushed and re-added around it, so nothing is dropped unlisted.
   */
  async start(): Promise<SinkResult> {
    const rebuild: string[] = [];
    const elements: string[] = [];
    const notes: string[] = [];
    for (const { family, network } of this.specs) {
      const state = await this.readSet(family, network);
      if (!state) continue;
      // a network set holds each network at its own length: nothing to re-key
      const rekeyed = network ? state.members.map((m) => ({ ...m, timeoutSec: m.timeoutSec > 0 ? m.timeoutSec : this.k.timeoutSec })) : this.rekey(state.members, family);
      const moved = rekeyed.some((e, i) => !sameAddress(e.prefix, state.members[i]?.prefix ?? ''));
      if (state.timeoutSec === this.k.timeoutSec && state.size === this.k.maxElements && !moved) continue;
      const name = this.setName(family, network);
      const keep = dedupe(rekeyed).slice(0, this.k.maxElements);
      rebuild.push(`delete set inet ${NFT_TABLE} ${name}`);
      if (keep.length > 0) elements.push(elementLine(name, keep));
      notes.push(
        `nftables set ${name} rebuilt (timeout ${state.timeoutSec}s -> ${this.k.timeoutSec}s, size ${state.size} -> ${this.k.maxElements}): ` +
          `${keep.length} of ${state.members.length} members kept`,
      );
    }
    const script = rebuild.length === 0
      ? nftEnforcementScript(this.k)
      : [
          `add table inet ${NFT_TABLE}`,
          `add chain inet ${NFT_TABLE} prerouting { type filter hook prerouting priority raw; policy accept; }`,
          `flush chain inet ${NFT_TABLE} prerouting`,
          ...rebuild,
          nftEnforcementScript(this.k),
          ...elements,
          '',
        ].join('\n');
    const r = await this.run(script);
    return r.ok ? { ok: true, notes } : r;
  }

  private async readSet(family: 4 | 6, network: boolean): Promise<NftSetState | null> {
    const r = await this.exec('nft', ['-j', 'list', 'set', 'inet', NFT_TABLE, this.setName(family, network)]);
    return r.ok ? parseNftSetState(r.stdout, family, network) : null;
  }

  /** Members under the configured prefix length (a /32 set read back for /24 becomes its /24 network). */
  private rekey(members: readonly KernelEntry[], family: 4 | 6): KernelEntry[] {
    return members.map((m) => ({
      family,
      prefix: prefixAddress(prefixKey(m.prefix, family, this.k.prefixV4, this.k.prefixV6)),
      // an element without a timeout of its own gets the configured one
      timeoutSec: m.timeoutSec > 0 ? m.timeoutSec : this.k.timeoutSec,
    }));
  }

  async add(entries: readonly KernelEntry[]): Promise<AddResult> {
    if (entries.length === 0) return { ok: true, rejected: [], pending: [] };
    const whole = await this.run(this.script(entries));
    if (whole.ok) return { ok: true, rejected: [], pending: [] };
    // nft applies a script as one transaction, all or nothing, and may blame
    // the wrong line: find the culprits by adding each entry on its own.
    const rejected: RejectedEntry[] = [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as KernelEntry;
      const r = await this.run(this.script([entry]));
      if (r.ok) continue;
      const kind = entryRefusal(r.error ?? '');
      if (kind === null) {
        if (rejected.length === 0 && i === 0) return { ok: false, error: r.error, rejected, pending: entries };
        return { ok: false, error: r.error, rejected, pending: entries.slice(i) };
      }
      const error = (r.error ?? '').split('\n').find((l) => l.includes('Error:'))?.trim() ?? (r.error ?? '');
      if (kind === 'full') {
        for (const e of entries.slice(i)) rejected.push({ entry: e, reason: 'full', error });
        break;
      }
      rejected.push({ entry, reason: 'invalid', error });
    }
    return { ok: true, rejected, pending: [] };
  }

  private script(entries: readonly KernelEntry[]): string {
    const lines: string[] = [];
    for (const { family, network } of this.specs) {
      const mine = entries.filter((e) => e.family === family && (e.network === true) === network);
      if (mine.length > 0) lines.push(refreshLines(this.setName(family, network), mine));
    }
    return lines.join('\n') + '\n';
  }

  async remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    const r = await this.run(`delete element inet ${NFT_TABLE} ${this.setName(entry.family, entry.network)} { ${kernelElement(entry)} }\n`);
    // Deleting what is not there is success: the goal state holds.
    return r.ok || /No such file|does not exist/i.test(r.error ?? '') ? { ok: true } : r;
  }

  async list(): Promise<KernelEntry[] | null> {
    const out: KernelEntry[] = [];
    for (const { family, network } of this.specs) {
      const r = await this.exec('nft', ['-j', 'list', 'set', 'inet', NFT_TABLE, this.setName(family, network)]);
      if (!r.ok) return null;
      out.push(...parseNftSetJson(r.stdout, family, network));
    }
    return out;
  }

  /**
   * One `nft -j list table inet ampguard`: the table, its chain and rules and
   * the four sets with their members (nft 1.0.6 fetches every element for any
   * listing of the table, so reading them costs nothing more).
   */
  async inspect(): Promise<KernelLook> {
    const args = ['-j', 'list', 'table', 'inet', NFT_TABLE];
    const r = await this.exec('nft', args);
    const specs = this.specs;
    if (!r.ok) {
      if (!/No such file or directory/i.test(r.stderr)) return { ok: false, error: describeFailure('nft', args, r), missing: [], sets: [] };
      // the table is gone, and every set with it: nothing of ours is in the kernel
      return {
        ok: true,
        missing: [{ what: 'table', set: '', detail: `nft table inet ${NFT_TABLE} does not exist` }],
        sets: specs.map((s) => ({ ...s, count: 0, members: new Map() })),
      };
    }
    return inspectNftTable(r.stdout, specs, { timeoutSec: this.k.timeoutSec, size: this.k.maxElements, udpPorts: this.k.udpPorts });
  }

  /** `nft -j list set` per set, parsed into element -> seconds left. */
  async readMembers(names: readonly string[]): Promise<Map<string, Map<string, number>> | null> {
    const out = new Map<string, Map<string, number>>();
    for (const { family, network } of this.specs) {
      const name = this.setName(family, network);
      if (!names.includes(name)) continue;
      const r = await this.exec('nft', ['-j', 'list', 'set', 'inet', NFT_TABLE, name]);
      if (!r.ok) return null;
      out.set(name, memberMap(parseNftSetJson(r.stdout, family, network), family, network));
    }
    return out;
  }

  async close(): Promise<void> {
    // The table stays, as with ipset: a restart reloads its members.
  }
}

function elementLine(set: string, entries: readonly KernelEntry[]): string {
  const elems = entries.map((e) => `${kernelElement(e)} timeout ${Math.max(1, Math.round(e.timeoutSec))}s`).join(', ');
  return `add element inet ${NFT_TABLE} ${set} { ${elems} }`;
}

/**
 * Adds the entries with the time each has left, also when one is in the set
 * already: `add element` of an existing element leaves its expiry alone (or,
 * on kernels from 6.10, refreshes it only when the timeout differs), so a
 * re-block would keep the old expiry and the kernel would stop dropping while
 * the listing still counts down. Added (a no-op when there), deleted and added
 * anew in one transaction: no packet ever sees the element missing.
 */
function refreshLines(set: string, entries: readonly KernelEntry[]): string {
  const elems = entries.map((e) => kernelElement(e)).join(', ');
  return [`add element inet ${NFT_TABLE} ${set} { ${elems} }`, `delete element inet ${NFT_TABLE} ${set} { ${elems} }`, elementLine(set, entries)].join('\n');
}

function memberMap(entries: readonly KernelEntry[], family: 4 | 6, network: boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) out.set(elementKey(e.prefix, family, network), e.timeoutSec);
  return out;
}

interface NftJsonRule {
  chain?: string;
  expr?: { match?: { left?: unknown; right?: unknown }; drop?: unknown }[];
}

/** the ports of a rule's `udp dport` match: 53, or { 53, 5353 } */
function rulePorts(rule: NftJsonRule): number[] {
  for (const x of rule.expr ?? []) {
    const left = x.match?.left as { payload?: { protocol?: string; field?: string } } | undefined;
    if (left?.payload?.protocol !== 'udp' || left.payload.field !== 'dport') continue;
    const right = x.match?.right as number | { set?: unknown[] } | undefined;
    if (typeof right === 'number') return [right];
    return (right?.set ?? []).filter((p): p is number => typeof p === 'number').sort((a, b) => a - b);
  }
  return [];
}

/** What of the table is missing or not as configured, and each set's members, from `nft -j list table`. */
export function inspectNftTable(
  text: string,
  specs: readonly { name: string; family: 4 | 6; network: boolean }[],
  want: { timeoutSec: number; size: number; udpPorts: readonly number[] },
): KernelLook {
  let doc: { nftables?: { set?: NftJsonSet & { name?: string; type?: string; flags?: string[] }; chain?: { name?: string; hook?: string; prio?: number }; rule?: NftJsonRule }[] };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return { ok: false, error: 'nft -j list table: output is not JSON', missing: [], sets: [] };
  }
  const items = doc.nftables ?? [];
  const missing: MissingPart[] = [];
  const chain = items.find((x) => x.chain?.name === 'prerouting')?.chain;
  if (!chain || chain.hook !== 'prerouting' || chain.prio !== -300) missing.push({ what: 'table', set: '', detail: `nft chain inet ${NFT_TABLE} prerouting is missing or not at raw priority` });
  const rules = items.flatMap((x) => (x.rule?.chain === 'prerouting' ? [x.rule] : []));
  const ports = [...want.udpPorts].sort((a, b) => a - b).join(',');
  const sets: SetLook[] = specs.map((spec) => {
    const set = items.find((x) => x.set?.name === spec.name)?.set;
    const type = spec.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    if (!set) missing.push({ what: 'set', set: spec.name, detail: `nft set ${spec.name} does not exist` });
    else if (set.type !== type || (set.flags ?? []).includes('interval') !== spec.network || set.timeout !== want.timeoutSec || set.size !== want.size) {
      missing.push({ what: 'set', set: spec.name, detail: `nft set ${spec.name} is not as configured (type ${set.type}, timeout ${set.timeout}s, size ${set.size})` });
    }
    const dropping = rules.some((r) => JSON.stringify(r.expr ?? []).includes(`"@${spec.name}"`) && (r.expr ?? []).some((x) => 'drop' in x) && rulePorts(r).join(',') === ports);
    if (chain && !dropping) missing.push({ what: 'rule', set: spec.name, detail: `nft rule dropping @${spec.name} for ports ${ports} is missing` });
    // counted from the listing; keyed only when a check reads the members (100,000 keys cost ~100 ms)
    return { ...spec, count: set?.elem?.length ?? 0, members: null, load: () => memberMap(setEntries(set, spec.family, spec.network), spec.family, spec.network) };
  });
  return { ok: true, missing, sets };
}

/** One element per key, with the longest remaining time of those that map to it. */
function dedupe(entries: readonly KernelEntry[]): KernelEntry[] {
  const by = new Map<string, KernelEntry>();
  for (const e of entries) {
    const had = by.get(e.prefix);
    if (!had || had.timeoutSec < e.timeoutSec) by.set(e.prefix, e);
  }
  return [...by.values()];
}

/** an element's value: an address, or in an interval set a network as {prefix: {addr, len}} */
type NftJsonVal = string | { prefix?: { addr?: string; len?: number } };

interface NftJsonElem {
  elem?: { val?: NftJsonVal; expires?: number; timeout?: number };
}

interface NftJsonSet {
  timeout?: number;
  size?: number;
  elem?: (NftJsonVal | NftJsonElem)[];
}

function findSet(text: string): NftJsonSet | null {
  try {
    const doc = JSON.parse(text) as { nftables?: { set?: NftJsonSet }[] };
    return doc.nftables?.find((x) => x.set)?.set ?? null;
  } catch {
    return null;
  }
}

/** "a.b.c.d", or "net/len" for a network of an interval set; null for what we never add (ranges) */
function valText(val: NftJsonVal | undefined): string | null {
  if (typeof val === 'string') return val;
  const p = val?.prefix;
  return typeof p?.addr === 'string' && typeof p.len === 'number' ? `${p.addr}/${p.len}` : null;
}

/** Members of `nft -j list set`: plain addresses or networks, or {elem: {val, expires}} with timeouts. */
export function parseNftSetJson(text: string, family: 4 | 6, network = false): KernelEntry[] {
  return setEntries(findSet(text), family, network);
}

function setEntries(set: NftJsonSet | null | undefined, family: 4 | 6, network: boolean): KernelEntry[] {
  return (set?.elem ?? []).flatMap((e): KernelEntry[] => {
    const withTimeout = typeof e === 'object' && 'elem' in e;
    const prefix = valText(withTimeout ? e.elem?.val : (e as NftJsonVal));
    if (prefix === null) return [];
    const timeoutSec = withTimeout ? (e.elem?.expires ?? e.elem?.timeout ?? 0) : 0;
    return [network ? { prefix, family, timeoutSec, network } : { prefix, family, timeoutSec }];
  });
}

function parseNftSetState(text: string, family: 4 | 6, network = false): NftSetState | null {
  const set = findSet(text);
  if (!set) return null;
  return { timeoutSec: set.timeout ?? 0, size: set.size ?? 0, members: parseNftSetJson(text, family, network) };
}
