// The ipset sink: `hash:ip` sets (with netmask = the budget prefix, so a /64
// is one member) and `hash:net` sets for the networks the aggregate budgets
// block (<set>-net, <set>-net-v6; docs/defence.md), filled in batches through
// `ipset restore -exist` (one process per batch, never per offender), dropped
// by iptables raw PREROUTING rules before conntrack and before our socket. docs/enforcement.md says how a bad
// line is dropped without losing its batch and how a set left by an earlier
// run with other parameters is rebuilt with its members.
import { describeFailure, type Exec } from './exec.js';
import { elementKey, entryRefusal, kernelElement, type AddResult, type BlockSink, type KernelEntry, type KernelLook, type MissingPart, type RejectedEntry, type SetLook, type SinkResult } from './sink.js';
import { kernelSetName, kernelSets, type KernelSet, type KernelSettings } from '../kernel/settings.js';
import { ipsetCreateArgs, ipsetDropRuleArgs } from '../kernel/rules.js';

/** The parameters of an existing set, from `ipset list -t`. */
interface IpsetHeader {
  readonly type: string;
  readonly family: string;
  readonly maxElements: number;
  readonly netmask: number;
  /** 0 when the set has no timeout support */
  readonly timeoutSec: number;
}

export function parseIpsetHeader(text: string): IpsetHeader | null {
  const type = /^Type:\s*(\S+)/m.exec(text)?.[1];
  const header = /^Header:\s*(.*)$/m.exec(text)?.[1];
  if (!type || header === undefined) return null;
  const field = (name: string): string | undefined => new RegExp(`(?:^|\\s)${name} (\\S+)`).exec(header)?.[1];
  const family = field('family') ?? 'inet';
  return {
    type,
    family,
    maxElements: Number(field('maxelem') ?? 65536),
    // ipset leaves the netmask out when it is the full length
    netmask: Number(field('netmask') ?? (family === 'inet6' ? 128 : 32)),
    timeoutSec: Number(field('timeout') ?? 0),
  };
}

export class IpsetSink implements BlockSink {
  readonly mode = 'ipset' as const;

  constructor(private readonly k: KernelSettings, private readonly exec: Exec) {}

  setName(family: 4 | 6, network = false): string {
    return kernelSetName(this.k, family, network);
  }

  private get specs(): KernelSet[] {
    return kernelSets(this.k);
  }

  private netmask(family: 4 | 6): number {
    return family === 4 ? this.k.prefixV4 : this.k.prefixV6;
  }

  private createArgs(name: string, spec: KernelSet): string[] {
    return ipsetCreateArgs(name, spec.family, spec.network, this.k);
  }

  async start(): Promise<SinkResult> {
    const notes: string[] = [];
    for (const spec of this.specs) {
      const made = await this.ensureSet(spec, notes);
      if (!made.ok) return made;
      const tool = spec.family === 4 ? 'iptables' : 'ip6tables';
      for (const port of this.k.udpPorts) {
        const rule = ipsetDropRuleArgs(spec.name, port);
        const present = await this.exec(tool, ['-w', '-t', 'raw', '-C', 'PREROUTING', ...rule]);
        if (present.ok) continue;
        const insert = ['-w', '-t', 'raw', '-I', 'PREROUTING', '1', ...rule];
        const added = await this.exec(tool, insert);
        if (!added.ok) return { ok: false, error: describeFailure(tool, insert, added) };
      }
    }
    return { ok: true, notes };
  }

  /** Creates the set, or rebuilds one left with other parameters keeping its members. */
  private async ensureSet(spec: KernelSet, notes: string[]): Promise<SinkResult> {
    const { name } = spec;
    const listed = await this.exec('ipset', ['list', '-t', name]);
    const header = listed.ok ? parseIpsetHeader(listed.stdout) : null;
    if (!header) {
      const args = [...this.createArgs(name, spec), '-exist'];
      const r = await this.exec('ipset', args);
      return r.ok ? { ok: true } : { ok: false, error: describeFailure('ipset', args, r) };
    }
    const type = spec.network ? 'hash:net' : 'hash:ip';
    const family = spec.family === 4 ? 'inet' : 'inet6';
    if (header.type !== type || header.family !== family) {
      return { ok: false, error: `ipset ${name} exists as ${header.type} family ${header.family}, not ${type} family ${family}: remove it or choose another block.set` };
    }
    const netmaskOk = spec.network || header.netmask === this.netmask(spec.family);
    if (header.timeoutSec === this.k.timeoutSec && header.maxElements === this.k.maxElements && netmaskOk) return { ok: true };
    return this.rebuild(spec, header, notes);
  }

  /**
   * A new set with the configured parameters, the old members copied in with
   * their remaining timeouts (ipset re-keys them to the new netmask itself),
   * then `ipset swap`: the DROP rule names the set, so it never stops matching.
   */
  private async rebuild(spec: KernelSet, old: IpsetHeader, notes: string[]): Promise<SinkResult> {
    const { name } = spec;
    const saved = await this.exec('ipset', ['save', name]);
    if (!saved.ok) return { ok: false, error: describeFailure('ipset', ['save', name], saved) };
    const members = parseIpsetSave(saved.stdout, spec.family, spec.network).map((m) => ({ ...m, timeoutSec: m.timeoutSec > 0 ? m.timeoutSec : this.k.timeoutSec }));
    const tmp = `ampguard-tmp-${process.pid % 100_000}-${spec.family}${spec.network ? 'n' : ''}`;
    await this.exec('ipset', ['destroy', tmp]);
    const create = await this.exec('ipset', this.createArgs(tmp, spec));
    if (!create.ok) return { ok: false, error: describeFailure('ipset', this.createArgs(tmp, spec), create) };
    const filled = await addLines(this.exec, () => tmp, members);
    if (!filled.ok) {
      await this.exec('ipset', ['destroy', tmp]);
      return { ok: false, error: filled.error };
    }
    const swap = await this.exec('ipset', ['swap', tmp, name]);
    if (!swap.ok) {
      await this.exec('ipset', ['destroy', tmp]);
      return { ok: false, error: describeFailure('ipset', ['swap', tmp, name], swap) };
    }
    await this.exec('ipset', ['destroy', tmp]);
    const lost = filled.rejected.length;
    const netmask = spec.network ? '' : `, netmask ${old.netmask} -> ${this.netmask(spec.family)}`;
    notes.push(
      `ipset ${name} rebuilt (timeout ${old.timeoutSec} -> ${this.k.timeoutSec}, maxelem ${old.maxElements} -> ${this.k.maxElements}${netmask}): ` +
        `${members.length - lost} of ${members.length} members kept${lost > 0 ? `, ${lost} refused (${filled.rejected[0]?.error})` : ''}`,
    );
    return { ok: true };
  }

  add(entries: readonly KernelEntry[]): Promise<AddResult> {
    return addLines(this.exec, (f, network) => this.setName(f, network), entries);
  }

  async remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    const args = ['del', this.setName(entry.family, entry.network), kernelElement(entry), '-exist'];
    const r = await this.exec('ipset', args);
    return r.ok ? { ok: true } : { ok: false, error: describeFailure('ipset', args, r) };
  }

  async list(): Promise<KernelEntry[] | null> {
    const out: KernelEntry[] = [];
    for (const spec of this.specs) {
      const r = await this.exec('ipset', ['save', spec.name]);
      if (!r.ok) return null;
      out.push(...parseIpsetSave(r.stdout, spec.family, spec.network));
    }
    return out;
  }

  /**
   * Three processes whatever the set sizes: `ipset list -t` (every set's
   * header and count), `iptables -S` and `ip6tables -S` of raw PREROUTING.
   * A set missing, of another type or with other parameters, and a DROP rule
   * missing for a set and port, are each a missing part; start() repairs them.
   */
  async inspect(): Promise<KernelLook> {
    const headers = await this.exec('ipset', ['list', '-t']);
    if (!headers.ok) return { ok: false, error: describeFailure('ipset', ['list', '-t'], headers), missing: [], sets: [] };
    const found = parseIpsetHeaders(headers.stdout);
    const rules: Record<4 | 6, string[]> = { 4: [], 6: [] };
    for (const family of [4, 6] as const) {
      const tool = family === 4 ? 'iptables' : 'ip6tables';
      const args = ['-w', '-t', 'raw', '-S', 'PREROUTING'];
      const r = await this.exec(tool, args);
      if (!r.ok) return { ok: false, error: describeFailure(tool, args, r), missing: [], sets: [] };
      rules[family] = r.stdout.split('\n');
    }
    const missing: MissingPart[] = [];
    const sets: SetLook[] = [];
    for (const spec of this.specs) {
      const seen = found.get(spec.name);
      const type = spec.network ? 'hash:net' : 'hash:ip';
      const family = spec.family === 4 ? 'inet' : 'inet6';
      if (!seen) missing.push({ what: 'set', set: spec.name, detail: `ipset ${spec.name} does not exist` });
      else if (seen.header.type !== type || seen.header.family !== family) missing.push({ what: 'set', set: spec.name, detail: `ipset ${spec.name} is ${seen.header.type} family ${seen.header.family}` });
      else if (seen.header.timeoutSec !== this.k.timeoutSec || seen.header.maxElements !== this.k.maxElements || (!spec.network && seen.header.netmask !== this.netmask(spec.family))) {
        missing.push({ what: 'set', set: spec.name, detail: `ipset ${spec.name} has other parameters (timeout ${seen.header.timeoutSec}, maxelem ${seen.header.maxElements})` });
      }
      for (const port of this.k.udpPorts) {
        if (!rules[spec.family].some((l) => isDropRule(l, spec.name, port))) {
          missing.push({ what: 'rule', set: spec.name, detail: `${spec.family === 4 ? 'iptables' : 'ip6tables'} raw PREROUTING DROP for ${spec.name} port ${port} is missing` });
        }
      }
      sets.push({ name: spec.name, family: spec.family, network: spec.network, count: seen?.count ?? null, members: null });
    }
    return { ok: true, missing, sets };
  }

  /** `ipset save SET` per set: one process each, parsed into element -> seconds left. */
  async readMembers(names: readonly string[]): Promise<Map<string, Map<string, number>> | null> {
    const out = new Map<string, Map<string, number>>();
    for (const spec of this.specs) {
      if (!names.includes(spec.name)) continue;
      const r = await this.exec('ipset', ['save', spec.name]);
      if (!r.ok) return null;
      const members = new Map<string, number>();
      for (const m of parseIpsetSave(r.stdout, spec.family, spec.network)) members.set(elementKey(m.prefix, spec.family, spec.network), m.timeoutSec);
      out.set(spec.name, members);
    }
    return out;
  }

  async close(): Promise<void> {
    // The sets and the rules stay: the kernel keeps dropping, and the next start reloads the members.
  }
}

/**
 * `ipset restore -exist` of a batch. restore applies lines in order and stops
 * at the first it refuses, naming it ("Error in line N: ..."): the lines before
 * went in, the refused one is dropped and reported, and the rest is restored
 * again, so one bad entry costs one more process, never the batch. Once the set
 * is full ("Hash is full") every later line would be refused too.
 */
async function addLines(exec: Exec, setFor: (family: 4 | 6, network: boolean) => string, entries: readonly KernelEntry[]): Promise<AddResult> {
  const rejected: RejectedEntry[] = [];
  let rest = entries;
  while (rest.length > 0) {
    const script = rest.map((e) => `add ${setFor(e.family, e.network === true)} ${kernelElement(e)} timeout ${Math.max(1, Math.round(e.timeoutSec))}\n`).join('');
    const r = await exec('ipset', ['restore', '-exist'], script);
    if (r.ok) break;
    const error = describeFailure('ipset', ['restore', '-exist'], r);
    const m = /Error in line (\d+): (.*)/.exec(r.stderr);
    const line = m ? Number(m[1]) : 0;
    const kind = m ? entryRefusal(m[2] as string) : null;
    if (kind === null || line < 1 || line > rest.length) {
      return { ok: false, error, rejected, pending: line >= 1 && line <= rest.length ? rest.slice(line - 1) : rest };
    }
    const reason = (m?.[2] as string).trim();
    if (kind === 'full') {
      for (const entry of rest.slice(line - 1)) rejected.push({ entry, reason: 'full', error: reason });
      break;
    }
    rejected.push({ entry: rest[line - 1] as KernelEntry, reason: 'invalid', error: reason });
    rest = rest.slice(line);
  }
  return { ok: true, rejected, pending: [] };
}

/** Members of `ipset save` output: "add <set> <ip> timeout <n>" ("<net>/<len>" in a network set). */
export function parseIpsetSave(text: string, family: 4 | 6, network = false): KernelEntry[] {
  const out: KernelEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^add \S+ (\S+)(?: timeout (\d+))?/.exec(line);
    if (!m) continue;
    const entry = { prefix: m[1] as string, family, timeoutSec: Number(m[2] ?? 0) };
    out.push(network ? { ...entry, network } : entry);
  }
  return out;
}

/** Every set of `ipset list -t` (all sets, headers only): its header and its count. */
export function parseIpsetHeaders(text: string): Map<string, { header: IpsetHeader; count: number }> {
  const out = new Map<string, { header: IpsetHeader; count: number }>();
  for (const block of text.split(/\n(?=Name: )/)) {
    const name = /^Name:\s*(\S+)/m.exec(block)?.[1];
    const header = parseIpsetHeader(block);
    if (!name || !header) continue;
    out.set(name, { header, count: Number(/^Number of entries:\s*(\d+)/m.exec(block)?.[1] ?? 0) });
  }
  return out;
}

/** "-A PREROUTING -p udp -m udp --dport 53 -m set --match-set S src -j DROP" (iptables -S), for our set and port */
function isDropRule(line: string, set: string, port: number): boolean {
  if (!line.startsWith('-A PREROUTING ') || !line.endsWith(' -j DROP')) return false;
  const words = line.split(' ');
  const at = (w: string): string | undefined => words[words.indexOf(w) + 1];
  return words.includes('udp') && at('--dport') === String(port) && at('--match-set') === set && at(set) === 'src';
}
