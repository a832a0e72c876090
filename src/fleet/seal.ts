// Every fleet message is sealed with the site key (fleet.key_file): an
// HMAC-SHA256 over the site, the sending node, its wall-clock time, its
// sequence number and the body. A message that is not sealed with the key, is
// older (or further ahead) than STALE_MS, or repeats a sequence number the node
// already used is dropped and counted (ampguard_fleet_messages_total
// {direction="rejected"}). Pure: time is a parameter.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** what travels: the node, its wall-clock ms, its sequence number, the body (JSON text) and the seal */
interface Envelope {
  readonly n: string;
  readonly t: number;
  readonly s: number;
  readonly b: string;
  readonly m: string;
}

/** how far a message's time may be from the receiver's clock */
export const STALE_MS = 10_000;
/** nodes whose last sequence number is remembered; a site has far fewer */
const MAX_NODES = 4096;

function mac(key: Buffer, site: string, n: string, t: number, s: number, b: string): Buffer {
  return createHmac('sha256', key).update(`${site}\n${n}\n${t}\n${s}\n`).update(b).digest();
}

export function seal(key: Buffer, site: string, node: string, t: number, s: number, body: string): Envelope {
  return { n: node, t, s, b: body, m: mac(key, site, node, t, s, body).toString('base64') };
}

type Unsealed = { readonly ok: true; readonly env: Envelope } | { readonly ok: false; readonly reason: 'malformed' | 'signature' | 'stale' | 'replay' };

/** Parses and checks the seal only (for stored values, which are old by nature: the KV's verdicts). */
export function open(key: Buffer, site: string, data: Uint8Array | string): Unsealed {
  let env: Envelope;
  try {
    env = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8')) as Envelope;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (
    typeof env !== 'object' || env === null || typeof env.n !== 'string' || typeof env.b !== 'string' || typeof env.m !== 'string' ||
    !Number.isSafeInteger(env.t) || !Number.isSafeInteger(env.s)
  ) return { ok: false, reason: 'malformed' };
  const want = mac(key, site, env.n, env.t, env.s, env.b);
  const got = Buffer.from(env.m, 'base64');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'signature' };
  return { ok: true, env };
}

/**
 * Live messages (evidence, heartbeats): sealed, fresh, and each node's sequence
 * numbers strictly increasing. A node starts its sequence at its start time in
 * microseconds, so a restarted node is not taken for a replay.
 */
export class Receiver {
  private readonly lastSeq = new Map<string, number>();

  constructor(
    private readonly key: Buffer,
    private readonly site: string,
  ) {}

  accept(data: Uint8Array | string, now: number): Unsealed {
    const r = open(this.key, this.site, data);
    if (!r.ok) return r;
    if (Math.abs(now - r.env.t) > STALE_MS) return { ok: false, reason: 'stale' };
    const last = this.lastSeq.get(r.env.n);
    if (last !== undefined && r.env.s <= last) return { ok: false, reason: 'replay' };
    // a map in insertion order: the oldest-heard node goes first when it is full
    this.lastSeq.delete(r.env.n);
    if (this.lastSeq.size >= MAX_NODES) this.lastSeq.delete(this.lastSeq.keys().next().value as string);
    this.lastSeq.set(r.env.n, r.env.s);
    return r;
  }
}

/** A node's sender: its sequence numbers start at its start time (us) and only grow. */
export class Sender {
  /** the first sequence number of this process: a stored verdict of this node with a lower one is from before a restart */
  readonly firstSeq: number;
  private seq: number;

  constructor(
    private readonly key: Buffer,
    private readonly site: string,
    readonly node: string,
    startWallMs: number,
  ) {
    this.seq = startWallMs * 1000;
    this.firstSeq = this.seq + 1;
  }

  seal(body: string, nowWallMs: number): Envelope {
    this.seq++;
    return seal(this.key, this.site, this.node, nowWallMs, this.seq, body);
  }
}
