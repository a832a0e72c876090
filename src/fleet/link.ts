// The NATS link of one node (docs/fleet.md): a core subject per site for
// evidence and heartbeats (`ampguard.<site>.evidence`, fire and forget), and a
// JetStream KV bucket per site for the operator's verdicts (`ampguard-blocks-
// <site>`), whose watch hands a node that starts late or reconnects the current
// blocks first and the changes after. Every message is sealed (seal.ts).
// Fail-static: the link never blocks a caller. While NATS is away, evidence is
// not sent (it would be stale when it arrived), verdicts wait in `pending` and
// are written when the link returns, and the watch is restarted then, so the
// node catches up on what it missed. The client reconnects forever.
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { open, Receiver, Sender } from './seal.js';
import { parseEvidence, type Evidence } from './evidence.js';
import { parseVerdict, verdictKey, type Verdict } from './verdict.js';
import { LogBudget } from '../log/rate-limited.js';

/** a node heard from within this long is a peer (ampguard_fleet_peers) */
const PEER_WINDOW_MS = 5000;
const HEARTBEAT_MS = 1000;
/** how often waiting verdicts are tried again while the KV does not take them */
const RETRY_MS = 1000;

type Direction = 'in' | 'out' | 'rejected';

interface LinkOptions {
  readonly servers: readonly string[];
  readonly site: string;
  readonly node: string;
  readonly key: Buffer;
  /** block.timeout in ms: the bucket's max age */
  readonly maxAgeMs: number;
  readonly log: Logger;
  /** monotonic ms (peers) */
  readonly clock: () => number;
  /** wall-clock ms (seals) */
  readonly wallClock: () => number;
}

interface LinkHandlers {
  evidence(e: Evidence, from: string): void;
  verdict(v: Verdict, from: string): void;
}

export class FleetLink {
  connected = false;
  readonly messages: Record<Direction, number> = { in: 0, out: 0, rejected: 0 };
  private readonly peers = new Map<string, number>();
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly subject: string;
  private readonly bucket: string;
  private nc: NatsConnection | null = null;
  private kv: KV | null = null;
  private sub: Subscription | null = null;
  private watchStop: (() => void) | null = null;
  /** verdicts not yet in the KV, by prefix: only the latest of each matters */
  private readonly pending = new Map<string, Verdict>();
  /** the newest verdict applied per prefix (its `at`): an older one arriving late changes nothing */
  private readonly applied = new Map<string, number>();
  private lastSent = 0;
  private closed = false;
  private flushing = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rejectLines = new LogBudget(1, 1000, () => this.o.clock());

  constructor(
    private readonly o: LinkOptions,
    private readonly on: LinkHandlers,
  ) {
    this.sender = new Sender(o.key, o.site, o.node, o.wallClock());
    this.receiver = new Receiver(o.key, o.site);
    this.subject = `ampguard.${o.site}.evidence`;
    this.bucket = `ampguard-blocks-${o.site}`;
  }

  /** Connects in the background (waiting for a server that is not up yet) and returns at once. */
  start(): void {
    const heartbeat = setInterval(() => {
      if (this.o.clock() - this.lastSent >= HEARTBEAT_MS) this.publish({ d: [] });
    }, HEARTBEAT_MS / 4);
    const retry = setInterval(() => void this.flushVerdicts(), RETRY_MS);
    const prune = setInterval(() => this.prune(), 10_000);
    for (const t of [heartbeat, retry, prune]) (t.unref(), this.timers.push(t));
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      this.nc = await connect({
        servers: [...this.o.servers],
        name: `ampguard-${this.o.node}`,
        noEcho: true,
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 2000,
        maxPingOut: 2,
      });
    } catch (err) {
      if (!this.closed) this.o.log.error({ err: (err as Error).message }, 'fleet: cannot connect to NATS, the node stands alone');
      return;
    }
    if (this.closed) return void this.nc.close();
    this.sub = this.nc.subscribe(this.subject, { callback: (err, msg) => void (err || this.receive(msg.data)) });
    this.o.log.info({ servers: this.o.servers, site: this.o.site, node: this.o.node }, 'fleet: connected to NATS');
    this.connected = true;
    void this.watchStatus(this.nc);
    await this.resync();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        if (this.connected) this.o.log.warn({ site: this.o.site }, 'fleet: NATS connection lost, judging on local evidence only');
        this.connected = false;
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.o.log.info({ site: this.o.site }, 'fleet: NATS connection back, resynchronising');
        void this.resync();
      }
    }
  }

  /** Opens the verdict bucket (creating it the first time), restarts the watch, writes what waited. */
  private async resync(): Promise<void> {
    const nc = this.nc;
    if (!nc || this.closed) return;
    try {
      if (!this.kv) {
        const kvm = new Kvm(jetstream(nc));
        try {
          this.kv = await kvm.create(this.bucket, { history: 1, ttl: this.o.maxAgeMs });
        } catch {
          this.kv = await kvm.open(this.bucket);
        }
      }
      this.watchStop?.();
      const w = await this.kv.watch();
      this.watchStop = () => w.stop();
      void (async () => {
        for await (const e of w) if (e.operation === 'PUT') this.receiveVerdict(e.value);
      })().catch((err: Error) => this.o.log.warn({ err: err.message }, 'fleet: verdict watch ended'));
      await this.flushVerdicts();
    } catch (err) {
      // the retry timer writes the verdicts; the next reconnect restarts the watch
      this.o.log.warn({ err: (err as Error).message }, 'fleet: verdict bucket not reachable yet');
    }
  }

  /** Publishes one evidence body (skipped while disconnected: it would be stale on arrival). */
  publish(e: Evidence): void {
    this.lastSent = this.o.clock();
    if (!this.connected || !this.nc) return;
    try {
      this.nc.publish(this.subject, JSON.stringify(this.sender.seal(JSON.stringify(e), this.o.wallClock())));
      this.messages.out++;
    } catch {
      // the connection closed between the check and the publish: the next batch goes when it is back
    }
  }

  /** A verdict of this node's operator: into the KV now, or when NATS is back. */
  verdict(v: Verdict): void {
    this.applied.set(v.p, v.at);
    this.pending.set(v.p, v);
    void this.flushVerdicts();
  }

  private async flushVerdicts(): Promise<void> {
    if (this.flushing || !this.kv || !this.connected || this.pending.size === 0) return;
    this.flushing = true;
    try {
      for (const [p, v] of [...this.pending]) {
        await this.kv.put(verdictKey(p), JSON.stringify(this.sender.seal(JSON.stringify(v), this.o.wallClock())));
        this.messages.out++;
        if (this.pending.get(p) === v) this.pending.delete(p);
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, waiting: this.pending.size }, 'fleet: verdicts not written yet, retrying');
    } finally {
      this.flushing = false;
    }
  }

  private receive(data: Uint8Array): void {
    const r = this.receiver.accept(data, this.o.wallClock());
    const e = r.ok ? parseEvidence(r.env.b) : null;
    if (!r.ok || !e) return this.reject(r.ok ? 'malformed' : r.reason);
    this.messages.in++;
    this.peers.set(r.env.n, this.o.clock());
    this.on.evidence(e, r.env.n);
  }

  private receiveVerdict(data: Uint8Array): void {
    const r = open(this.o.key, this.o.site, data);
    const v = r.ok ? parseVerdict(r.env.b) : null;
    if (!r.ok || !v) return this.reject(r.ok ? 'malformed' : r.reason);
    // a verdict past its exp holds nothing any more: one put back into the bucket (no key needed
    // to replay a sealed value) would otherwise lift a block the ladder made since
    if (v.exp <= this.o.wallClock()) return this.reject('stale');
    // this process's own writes come back through the watch; a stored one from before a restart is applied
    if (r.env.n === this.o.node && r.env.s >= this.sender.firstSeq) return;
    const seen = this.applied.get(v.p);
    if (seen !== undefined && v.at <= seen) return;
    this.applied.set(v.p, v.at);
    this.messages.in++;
    this.on.verdict(v, r.env.n);
  }

  private reject(reason: string): void {
    this.messages.rejected++;
    if (this.rejectLines.take() === null) return;
    this.o.log.warn({ reason, rejected: this.messages.rejected }, 'fleet: message rejected');
  }

  /** nodes heard from in the last PEER_WINDOW_MS */
  peerCount(): number {
    const now = this.o.clock();
    let n = 0;
    for (const at of this.peers.values()) if (now - at <= PEER_WINDOW_MS) n++;
    return n;
  }

  private prune(): void {
    const now = this.o.clock();
    for (const [node, at] of this.peers) if (now - at > PEER_WINDOW_MS) this.peers.delete(node);
    const wall = this.o.wallClock();
    for (const [p, at] of this.applied) if (wall - at > this.o.maxAgeMs) this.applied.delete(p);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.watchStop?.();
    this.sub?.unsubscribe();
    const nc = this.nc;
    this.connected = false;
    // not awaited: a close while the server is away must not hold the node's stop
    if (nc) void nc.close().catch(() => undefined);
  }
}
