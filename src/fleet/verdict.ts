// An operator's verdict as the site stores it: block or unblock one prefix (or
// network) key, when it was made (wall-clock ms: the newest per key wins) and
// until when it holds. The KV keeps one per key; the bucket's max age
// (block.timeout) drops it after, and `exp` says the rest, since a per-key TTL
// needs a newer nats-server than Debian ships (docs/fleet.md).

export interface Verdict {
  readonly op: 'block' | 'unblock';
  /** the block key as `blocks list` shows it: "198.18.0.0/24", "127.0.0.50", "fd00:1::/48" */
  readonly p: string;
  /** wall-clock ms it was made */
  readonly at: number;
  /** wall-clock ms it ends */
  readonly exp: number;
}

const KEY_MAX = 64;

export function parseVerdict(body: string): Verdict | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.op !== 'block' && o.op !== 'unblock') return null;
  if (typeof o.p !== 'string' || o.p.length === 0 || o.p.length > KEY_MAX || !/^[0-9a-fA-F.:/]+$/.test(o.p)) return null;
  if (!Number.isSafeInteger(o.at) || !Number.isSafeInteger(o.exp)) return null;
  return { op: o.op, p: o.p, at: o.at as number, exp: o.exp as number };
}

/** a KV key may not hold ':' (IPv6): the key's base64url form */
export function verdictKey(prefix: string): string {
  return Buffer.from(prefix).toString('base64url');
}
