// The interface every enforcement sink implements (STYLE 11): ipset, nftables,
// userspace, off. A kernel sink keeps the set and the raw DROP rule; the
// userspace block table is kept by the Enforcer for every mode.

export type BlockMode = 'ipset' | 'nftables' | 'userspace' | 'off';

export interface KernelEntry {
  /** the address or network ("a.b.c.d" or "net/len") as the set holds it */
  readonly prefix: string;
  readonly family: 4 | 6;
  /** seconds left; 0 when the set does not say */
  readonly timeoutSec: number;
}

export interface SinkResult {
  readonly ok: boolean;
  readonly error?: string;
}

export interface BlockSink {
  readonly mode: BlockMode;
  /** creates the sets and rules if missing; not ok when the kernel refuses */
  start(): Promise<SinkResult>;
  add(entries: readonly KernelEntry[]): Promise<SinkResult>;
  remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult>;
  list(): Promise<KernelEntry[] | null>;
  close(): Promise<void>;
}

/** Sinks that keep nothing outside the process: userspace and off. */
export function processOnlySink(mode: 'userspace' | 'off'): BlockSink {
  const ok = { ok: true };
  return {
    mode,
    start: async () => ok,
    add: async () => ok,
    remove: async () => ok,
    list: async () => null,
    close: async () => undefined,
  };
}

/** the address part of a prefix key: "10.0.0.0/24" -> "10.0.0.0" */
export function prefixAddress(prefix: string): string {
  const slash = prefix.indexOf('/');
  return slash < 0 ? prefix : prefix.slice(0, slash);
}
