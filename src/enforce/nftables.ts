// The nftables sink: an `inet ampguard` table with timeout sets and a
// prerouting chain at raw priority (before conntrack), fed in batches with one
// `nft -f -` per batch.
import { describeFailure, type Exec } from './exec.js';
import { prefixAddress, type BlockSink, type KernelEntry, type SinkResult } from './sink.js';
import type { KernelSettings } from './kernel-settings.js';
import { NFT_TABLE, nftEnforcementScript } from '../firewall/rules.js';

export class NftablesSink implements BlockSink {
  readonly mode = 'nftables' as const;

  constructor(private readonly k: KernelSettings, private readonly exec: Exec) {}

  private setFor(family: 4 | 6): string {
    return family === 4 ? this.k.set : this.k.set6;
  }

  private async run(script: string): Promise<SinkResult> {
    const r = await this.exec('nft', ['-f', '-'], script);
    return r.ok ? { ok: true } : { ok: false, error: describeFailure('nft', ['-f', '-'], r) };
  }

  start(): Promise<SinkResult> {
    return this.run(nftEnforcementScript(this.k));
  }

  add(entries: readonly KernelEntry[]): Promise<SinkResult> {
    if (entries.length === 0) return Promise.resolve({ ok: true });
    const lines: string[] = [];
    for (const family of [4, 6] as const) {
      const mine = entries.filter((e) => e.family === family);
      if (mine.length === 0) continue;
      const elems = mine.map((e) => `${prefixAddress(e.prefix)} timeout ${Math.max(1, Math.round(e.timeoutSec))}s`).join(', ');
      lines.push(`add element inet ${NFT_TABLE} ${this.setFor(family)} { ${elems} }`);
    }
    return this.run(lines.join('\n') + '\n');
  }

  async remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult> {
    const r = await this.run(`delete element inet ${NFT_TABLE} ${this.setFor(entry.family)} { ${prefixAddress(entry.prefix)} }\n`);
    // Deleting what is not there is success: the goal state holds.
    return r.ok || /No such file|does not exist/i.test(r.error ?? '') ? { ok: true } : r;
  }

  async list(): Promise<KernelEntry[] | null> {
    const out: KernelEntry[] = [];
    for (const family of [4, 6] as const) {
      const r = await this.exec('nft', ['-j', 'list', 'set', 'inet', NFT_TABLE, this.setFor(family)]);
      if (!r.ok) return null;
      out.push(...parseNftSetJson(r.stdout, family));
    }
    return out;
  }

  async close(): Promise<void> {
    // The table stays, as with ipset: a restart reloads its members.
  }
}

interface NftJsonElem {
  elem?: { val?: string; expires?: number; timeout?: number };
}

/** Members of `nft -j list set`: plain addresses, or {elem: {val, expires}} with timeouts. */
export function parseNftSetJson(text: string, family: 4 | 6): KernelEntry[] {
  try {
    const doc = JSON.parse(text) as { nftables?: { set?: { elem?: (string | NftJsonElem)[] } }[] };
    const set = doc.nftables?.find((x) => x.set)?.set;
    return (set?.elem ?? []).flatMap((e): KernelEntry[] => {
      if (typeof e === 'string') return [{ prefix: e, family, timeoutSec: 0 }];
      const val = e.elem?.val;
      return val ? [{ prefix: val, family, timeoutSec: e.elem?.expires ?? e.elem?.timeout ?? 0 }] : [];
    });
  } catch {
    return [];
  }
}
