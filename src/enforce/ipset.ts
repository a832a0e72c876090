// The ipset sink: `hash:ip` sets (with netmask = the budget prefix, so a /64
// is one member), filled in batches through `ipset restore -exist` (one process
// per batch, never per offender), dropped by an iptables raw PREROUTING rule
// before conntrack and before our socket.
import { describeFailure, type Exec } from './exec.js';
import { prefixAddress, type BlockSink, type KernelEntry, type SinkResult } from './sink.js';
import type { KernelSettings } from './kernel-settings.js';
import { ipsetDropRuleArgs } from '../firewall/rules.js';

export class IpsetSink implements BlockSink {
  readonly mode = 'ipset' as const;

  constructor(private readonly k: KernelSettings, private readonly exec: Exec) {}

  private setFor(family: 4 | 6): string {
    return family === 4 ? this.k.set : this.k.set6;
  }

  async start(): Promise<SinkResult> {
    for (const family of [4, 6] as const) {
      const args = [
        'create', this.setFor(family), 'hash:ip', 'family', family === 4 ? 'inet' : 'inet6',
        'timeout', String(this.k.timeoutSec), 'maxelem', String(this.k.maxElements),
        'netmask', String(family === 4 ? this.k.prefixV4 : this.k.prefixV6), '-exist',
      ];
      const r = await this.exec('ipset', args);
      if (!r.ok) return { ok: false, error: describeFailure('ipset', args, r) };
      const tool = family === 4 ? 'iptables' : 'ip6tables';
      for (const port of this.k.udpPorts) {
        const rule = ipsetDropRuleArgs(this.setFor(family), port);
        const present = await this.exec(tool, ['-w', '-t', 'raw', '-C', 'PREROUTING', ...rule]);
        if (present.ok) continue;
        const insert = ['-w', '-t', 'raw', '-I', 'PREROUTING', '1', ...rule];
        const added = await this.exec(tool, insert);
        if (!added.ok) return { ok: false, error: describeFailure(tool, insert, added) };
      }
    }
    return { ok: true };
  }

  async add(entries: readonly KernelEntry[]): Promise<SinkResult> {
    if (entries.length === 0) return { ok: true };
    const script = entries
      .map((e) => `add ${this.setFor(e.family)} ${prefixAddress(e.prefix)} timeout ${Math.max(1, Math.round(e.timeoutSec))}\n`)
      .join('');
    const r = await this.exec('ipset', ['restore', '-exist'], script);
    return r.ok ? { ok: true } : { ok: false, error: describeFailure('ipset', ['restore', '-exist'], r) };
  }

  async remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    const args = ['del', this.setFor(entry.family), prefixAddress(entry.prefix), '-exist'];
    const r = await this.exec('ipset', args);
    return r.ok ? { ok: true } : { ok: false, error: describeFailure('ipset', args, r) };
  }

  async list(): Promise<KernelEntry[] | null> {
    const out: KernelEntry[] = [];
    for (const family of [4, 6] as const) {
      const r = await this.exec('ipset', ['save', this.setFor(family)]);
      if (!r.ok) return null;
      out.push(...parseIpsetSave(r.stdout, family));
    }
    return out;
  }

  async close(): Promise<void> {
    // The set and the rule stay: the kernel keeps dropping, and the next start reloads the members.
  }
}

/** Members of `ipset save` output: "add <set> <ip> timeout <n>". */
export function parseIpsetSave(text: string, family: 4 | 6): KernelEntry[] {
  const out: KernelEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^add \S+ (\S+)(?: timeout (\d+))?/.exec(line);
    if (m) out.push({ prefix: m[1] as string, family, timeoutSec: Number(m[2] ?? 0) });
  }
  return out;
}
