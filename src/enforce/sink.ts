// The interface every enforcement sink implements (CONTRIBUTING.md rule 11): ipset, nftables,
// userspace, off. A kernel sink keeps the set and the raw DROP rule; the
// userspace block table is kept by the Enforcer for every mode.
import { parseIpv6 } from '../net/ip.js';

export type BlockMode = 'ipset' | 'nftables' | 'userspace' | 'off';

export interface KernelEntry {
  /** the address or network ("a.b.c.d" or "net/len") as the set holds it */
  readonly prefix: string;
  readonly family: 4 | 6;
  /** seconds left; 0 when the set does not say */
  readonly timeoutSec: number;
  /**
   * true: a network an aggregate budget blocked ("net/len"), held in the
   * network sets (ipset hash:net, nft interval sets) whatever its length;
   * otherwise a budget prefix in the per-prefix sets, keyed by their netmask
   */
  readonly network?: boolean;
}

/** What every kernel operation answers: ok false when the kernel could not be reached or refused, with the reason. */
interface KernelOutcome {
  readonly ok: boolean;
  readonly error?: string;
}

export interface SinkResult extends KernelOutcome {
  /** what start() did to an existing set besides creating it (reconciliation), for the log */
  readonly notes?: readonly string[];
}

/** An entry the kernel refused on its own merits; the rest of its batch went in. */
export interface RejectedEntry {
  readonly entry: KernelEntry;
  /** full: the set holds block.max_elements already; invalid: the kernel refused the element itself */
  readonly reason: 'full' | 'invalid';
  readonly error: string;
}

/**
 * The outcome of one batch. ok false: the kernel could not be reached or refused
 * the batch as a whole (nothing to blame on one entry), so `pending` is to be
 * retried; ok true: every entry went in except `rejected`.
 */
export interface AddResult extends KernelOutcome {
  readonly rejected: readonly RejectedEntry[];
  /** entries not tried yet when a batch-wide failure stopped the batch */
  readonly pending: readonly KernelEntry[];
}

/** A part of the kernel structure a check found missing or wrong (docs/enforcement.md, "Drift"). */
export interface MissingPart {
  /** table: the nft table or its chain; set: a set missing or not as configured; rule: a DROP rule */
  readonly what: 'table' | 'set' | 'rule';
  /** the set whose members it leaves undropped ('' for the whole table: every set) */
  readonly set: string;
  readonly detail: string;
}

/** One of the four sets, as one check saw it. */
export interface SetLook {
  readonly name: string;
  readonly family: 4 | 6;
  readonly network: boolean;
  /** entries the kernel counts (ipset's header, expired entries not yet collected included); null when not known */
  readonly count: number | null;
  /** canonical element (elementKey) -> seconds left, when this check read the members; null otherwise */
  readonly members: ReadonlyMap<string, number> | null;
  /** the members from what the look read already (nftables), built only when a check needs them */
  load?(): ReadonlyMap<string, number>;
}

/**
 * One cheap look at the kernel (a few processes whatever the set sizes, never
 * one per entry). ok false: the kernel could not be read at all.
 */
export interface KernelLook extends KernelOutcome {
  readonly missing: readonly MissingPart[];
  readonly sets: readonly SetLook[];
}

export interface BlockSink {
  readonly mode: BlockMode;
  /** creates the sets and rules if missing; not ok when the kernel refuses */
  start(): Promise<SinkResult>;
  /** adds a batch; one bad entry never keeps the others out */
  add(entries: readonly KernelEntry[]): Promise<AddResult>;
  remove(entry: Omit<KernelEntry, 'timeoutSec'>): Promise<SinkResult>;
  list(): Promise<KernelEntry[] | null>;
  /** the structure (sets, rules, table) and what each set counts; nftables reads the members too */
  inspect(): Promise<KernelLook>;
  /** the members of the named sets (one listing per set), keyed by elementKey; null when a listing fails */
  readMembers(names: readonly string[]): Promise<Map<string, Map<string, number>> | null>;
  /** the set an entry goes in */
  setName(family: 4 | 6, network: boolean): string;
  close(): Promise<void>;
}

/** Sinks that keep nothing outside the process: userspace and off. */
export function processOnlySink(mode: 'userspace' | 'off'): BlockSink {
  const ok = { ok: true };
  return {
    mode,
    start: async () => ok,
    add: async () => ({ ok: true, rejected: [], pending: [] }),
    remove: async () => ok,
    list: async () => null,
    inspect: async () => ({ ok: true, missing: [], sets: [] }),
    readMembers: async () => new Map(),
    setName: () => '',
    close: async () => undefined,
  };
}

/** An entry-specific refusal by ipset or nft, or null for a batch-wide failure (no permission, no set, no tool). */
export function entryRefusal(error: string): 'full' | 'invalid' | null {
  // "Hash is full" (ipset), ENFILE/ENOSPC (nft sets at their size)
  if (/Hash is full|Too many open files|No space left/i.test(error)) return 'full';
  // "conflicting intervals": an nft interval set refuses a network overlapping one it holds (another aggregate length)
  if (/Null-valued element|Syntax error|cannot parse|resolv|out of range|Invalid|not supported|conflicting interval|overlap/i.test(error)) return 'invalid';
  return null;
}

/** What the set holds for an entry: a network as "net/len", a budget prefix as its address (the set's netmask keys it). */
export function kernelElement(e: Pick<KernelEntry, 'prefix' | 'network'>): string {
  return e.network ? e.prefix : prefixAddress(e.prefix);
}

/** the address part of a prefix key: "10.0.0.0/24" -> "10.0.0.0" */
export function prefixAddress(prefix: string): string {
  const slash = prefix.indexOf('/');
  return slash < 0 ? prefix : prefix.slice(0, slash);
}

const groups6 = new Uint16Array(8);

/**
 * One spelling per set element, whatever tool printed it: IPv6 as 8 groups
 * ("fd00:a3b1::" and "fd00:a3b1:0:0:0:0:0:0" are one), networks always with
 * their length ("198.18.2.1" in a hash:net set is "198.18.2.1/32").
 */
export function elementKey(text: string, family: 4 | 6, network: boolean): string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const canonical = family === 4 || !parseIpv6(address, groups6) ? address : Array.from(groups6, (g) => g.toString(16)).join(':');
  if (!network) return canonical;
  return `${canonical}/${slash < 0 ? (family === 4 ? 32 : 128) : text.slice(slash + 1)}`;
}
