// The replay's state machine, one captured frame at a time: frames decoded
// once and handed to every policy runner (one per configuration of a sweep)
// on the capture's own clock. A query is a DNS message with QR=0 to a DNS
// port, a reply one with QR=1 from it; the runners pair them by client
// address, port and ID. Once a second of capture time each runner does what
// the live process's timers do; a second in which nothing could change is
// skipped, so a gap of a day in a capture costs no more than one of a second
// (docs/replay.md). Fragments are reassembled first (reassembly.ts), TCP
// streams cut into DNS messages (tcp-streams.ts); answers whose query the
// capture does not hold are tallied by reflector and target (reflection.ts).
// One method per kind of frame; the files and their errors are replay.ts's.
import { Decoded, LINK_RAW, PROTO_TCP, type SkipReason } from './packet.js';
import type { Frame } from './capture.js';
import { TcpStreams } from './tcp-streams.js';
import { Reassembler, type ReassemblyStats } from './reassembly.js';
import { QuerySeen, ReflectionTable } from './reflection.js';
import { QueryPool } from './query-pool.js';
import { pairKey, type PolicyRunner } from './runner.js';
import { parseQuery } from '../dns/query.js';
import { FLAG_QR, HEADER_LEN } from '../dns/header.js';
import type { QueryContext } from '../policy/context.js';

export interface CaptureTotals {
  files: string[];
  bytesRead: number;
  packets: number;
  /** frames that were not DNS on a DNS port, by why */
  skipped: Record<Exclude<SkipReason, 'fragment'> | 'not_dns_port' | 'not_server' | 'not_dns' | 'internal_error', number>;
  /** IP fragments and what became of them */
  reassembly: ReassemblyStats;
  /** UDP replies shorter in the capture than on the wire (snaplen): their wire length is used */
  cutBySnaplen: number;
  udpQueries: number;
  udpQueryBytes: number;
  udpReplies: number;
  udpReplyBytes: number;
  tcpSegments: number;
  tcpQueries: number;
  /** DNS answers read from server-to-client TCP streams, and their bytes */
  tcpReplies: number;
  tcpReplyBytes: number;
  tcpGapBytes: number;
  /** bytes passed over to find a message boundary in a stream picked up mid-way (or after a gap) */
  tcpResyncBytes: number;
  /** TCP streams (one direction of a connection) picked up without their SYN */
  tcpMidStream: number;
  /** UDP answers whose query the capture does not hold, by reflector and target */
  reflection: ReflectionTable;
  /** ms since the epoch, capture clock */
  firstTs: number;
  lastTs: number;
  /** frames whose timestamp went backwards (taken at the latest time seen) */
  outOfOrder: number;
  /** files that broke off: the replay read each up to `offset` */
  captureErrors: { file: string; offset: number; message: string }[];
  /** the first fault of the replay's own code on a frame (a bug: the frame was skipped and counted as internal_error) */
  internalError: string | null;
}

export function newTotals(files: string[]): CaptureTotals {
  return {
    files, bytesRead: 0, packets: 0,
    skipped: { link_type: 0, not_ip: 0, not_udp_tcp: 0, short: 0, not_dns_port: 0, not_server: 0, not_dns: 0, internal_error: 0 },
    reassembly: new Reassembler().stats,
    cutBySnaplen: 0, udpQueries: 0, udpQueryBytes: 0, udpReplies: 0, udpReplyBytes: 0,
    tcpSegments: 0, tcpQueries: 0, tcpReplies: 0, tcpReplyBytes: 0, tcpGapBytes: 0, tcpResyncBytes: 0, tcpMidStream: 0,
    reflection: new ReflectionTable(), firstTs: 0, lastTs: 0, outOfOrder: 0, captureErrors: [], internalError: null,
  };
}

export interface LoopOptions {
  /** DNS ports: 53 and the ports the config listens on */
  readonly ports: ReadonlySet<number>;
  /** when set, only traffic to and from these server addresses */
  readonly servers?: ReadonlySet<string>;
  /** TCP flows followed at once */
  readonly maxTcpFlows?: number;
  /** the window in which an answer's query counts as captured (backend_timeout_ms) */
  readonly answerWindowMs?: number;
}

/** What the loop tells each runner (runner.ts); tests may hand it a recording fake. */
export type LoopRunner = Pick<PolicyRunner, 'release' | 'idle' | 'tick' | 'udpQuery' | 'malformed' | 'udpReply' | 'reflected' | 'tcpSender' | 'tcpQuery' | 'tcpReply'>;

/** A captured frame as the loop reads it (capture.ts's Frame, or one a test builds). */
export type FrameView = Pick<Frame, 'ts' | 'buffer' | 'linkType' | 'start' | 'end'>;

const TICK_MS = 1000;
/** seconds ticked one by one after a frame while something is still changing; past them, the gap is ticked once */
const MAX_TICKS_PER_FRAME = 3600;

/** A UDP query as the loop hands it to the runners: `holders` counts those that keep it pending. */
interface PooledQuery extends QueryContext {
  holders: number;
}

export class ReplayLoop {
  readonly totals: CaptureTotals;
  /** the decoder of the frame (or reassembled datagram) being replayed */
  private readonly decoded = new Decoded();
  private readonly tcp: TcpStreams;
  private readonly fragments = new Reassembler();
  private readonly seen = new QuerySeen();
  /** the copies of UDP queries that runners keep pending */
  private readonly pool = new QueryPool();
  /** DNS ports as a bitmap: a Set lookup per packet for each direction costs more */
  private readonly ports = new Uint8Array(65_536);
  private readonly servers: ReadonlySet<string> | undefined;
  private readonly answerWindowMs: number;
  /** the capture's clock: the latest frame time seen, -1 before the first frame */
  private now = -1;
  /** the next tick due, on the grid of whole seconds after the first frame */
  private nextTick = 0;
  /** the client of the TCP segment being cut into messages (tcpFromClient) */
  private tcpClient = '';
  private tcpFamily: 4 | 6 = 4;

  constructor(private readonly runners: readonly LoopRunner[], opts: LoopOptions, totals: CaptureTotals = newTotals([])) {
    this.totals = totals;
    totals.reassembly = this.fragments.stats;
    this.tcp = new TcpStreams(opts.maxTcpFlows ?? 65_536);
    this.servers = opts.servers;
    this.answerWindowMs = opts.answerWindowMs ?? 2000;
    for (const p of opts.ports) this.ports[p] = 1;
    for (const r of runners) r.release = this.release;
  }

  /** One captured frame, at its time. */
  frame(f: FrameView): void {
    this.totals.packets++;
    this.advance(f.ts);
    const skip = this.decoded.decode(f.buffer, f.linkType, f.start, f.end);
    if (skip === null) return this.packet();
    if (skip === 'fragment') return this.fragment();
    this.totals.skipped[skip]++;
  }

  /** The end of the captures: what is still in reassembly is counted, and the totals are complete. */
  finish(): CaptureTotals {
    const t = this.totals;
    t.lastTs = Math.max(this.now, t.firstTs);
    this.fragments.finish(t.lastTs);
    t.tcpGapBytes = this.tcp.gaps;
    t.tcpResyncBytes = this.tcp.resyncSkipped;
    t.tcpMidStream = this.tcp.midStream;
    return t;
  }

  /** a runner is done with a pending query (answered, timed out, replaced or evicted): the last one returns its copy */
  private readonly release = (ctx: QueryContext): void => {
    if (--(ctx as PooledQuery).holders === 0) this.pool.give(ctx.query);
  };

  /** The capture's clock, never backwards (merged interfaces may be slightly out of order), and the ticks it makes due. */
  private advance(ts: number): void {
    if (this.now < 0) {
      this.now = ts;
      this.totals.firstTs = ts;
      this.nextTick = ts + TICK_MS;
    } else if (ts > this.now) {
      this.now = ts;
    } else if (ts < this.now) {
      this.totals.outOfOrder++;
    }
    if (this.now >= this.nextTick) this.tickDue();
  }

  /** The ticks due by `now`, on the grid of whole seconds after the first frame. */
  private tickDue(): void {
    const now = this.now;
    let n = 0;
    while (this.nextTick <= now) {
      if (this.idle() || n >= MAX_TICKS_PER_FRAME) {
        // nothing would change (or nothing more, after an hour of ticks): one tick at the last second due, at most
        const last = this.totals.firstTs + Math.floor((now - this.totals.firstTs) / TICK_MS) * TICK_MS;
        if (n >= MAX_TICKS_PER_FRAME) for (const r of this.runners) r.tick(last);
        this.nextTick = last + TICK_MS > now ? last + TICK_MS : now + TICK_MS;
        return;
      }
      for (const r of this.runners) r.tick(this.nextTick);
      this.nextTick += TICK_MS;
      n++;
    }
  }

  private idle(): boolean {
    for (const r of this.runners) if (!r.idle()) return false;
    return true;
  }

  /** A fragment: the datagram is decoded once its last fragment is in, at this frame's time. */
  private fragment(): void {
    const whole = this.fragments.add(this.decoded, this.now);
    if (whole === null) return;
    const again = this.decoded.decode(whole.packet, LINK_RAW, 0, whole.stop);
    if (again === null) return this.packet();
    // a reassembled datagram is never a fragment again
    if (again !== 'fragment') this.totals.skipped[again]++;
  }

  /** One decoded UDP or TCP packet (a frame, or a reassembled datagram), to the method for its kind. */
  private packet(): void {
    const d = this.decoded;
    const toServer = this.ports[d.dstPort] === 1;
    const fromServer = this.ports[d.srcPort] === 1;
    if (!toServer && !fromServer) {
      this.totals.skipped.not_dns_port++;
      return;
    }
    if (d.proto === PROTO_TCP) {
      this.totals.tcpSegments++;
      // both ports DNS (server to server): the lower port is taken as the server's
      if (toServer && (!fromServer || d.dstPort <= d.srcPort)) this.tcpFromClient();
      else this.tcpFromServer();
      return;
    }
    // the DNS message is bytes [at, at + length) of the frame, read in place: views and copies cost more than the rest
    const f = d.frame;
    const at = d.payloadStart;
    const length = d.payloadEnd - at;
    if (d.wireLength < HEADER_LEN || length < HEADER_LEN) {
      this.totals.skipped.not_dns++;
      return;
    }
    const isReply = (((f[at + 2]! << 8) | f[at + 3]!) & FLAG_QR) !== 0;
    if (!isReply && toServer) this.udpQuery(at, length);
    else if (isReply && fromServer) this.udpReply(at, length);
    else this.totals.skipped.not_dns++;
  }

  /** True (and counted) when `servers` is set and the packet's server, its destination or source, is not among them. */
  private notServer(serverIsDestination: boolean): boolean {
    if (this.servers === undefined) return false;
    if (this.servers.has(serverIsDestination ? this.decoded.destination() : this.decoded.source())) return false;
    this.totals.skipped.not_server++;
    return true;
  }

  /** A UDP query, bytes [at, at + length) of the frame. */
  private udpQuery(at: number, length: number): void {
    if (this.notServer(true)) return;
    const d = this.decoded;
    const t = this.totals;
    const now = this.now;
    const client = d.source();
    const slot = d.slot;
    t.udpQueries++;
    t.udpQueryBytes += d.wireLength;
    // a copy: the reader reuses its buffer, and a pending query must outlive this frame
    const query = this.pool.copy(d.frame, at, length);
    const parsed = length === d.wireLength ? parseQuery(query) : null;
    if (parsed === null) {
      this.pool.give(query);
      for (const r of this.runners) r.malformed(client, d.family, d.wireLength, now);
      return;
    }
    const ctx: PooledQuery = { query, parsed, clientAddress: client, family: d.family, proto: 'udp', holders: 0 };
    const key = pairKey(d.srcPort, parsed.id, d.addressBits(true));
    this.seen.query(key, now);
    for (const r of this.runners) if (r.udpQuery(ctx, key, d.srcPort, now, slot)) ctx.holders++;
    if (ctx.holders === 0) this.pool.give(query);
  }

  /** A UDP reply, bytes [at, at + length) of the frame. */
  private udpReply(at: number, length: number): void {
    if (this.notServer(false)) return;
    const d = this.decoded;
    const f = d.frame;
    const t = this.totals;
    const now = this.now;
    const client = d.destination();
    t.udpReplies++;
    t.udpReplyBytes += d.wireLength;
    // the policy judges a reply by its length on the wire, which snaplen may have cut in the capture
    if (length < d.wireLength) t.cutBySnaplen++;
    const id = (f[at]! << 8) | f[at + 1]!;
    const key = pairKey(d.dstPort, id, d.addressBits(false));
    if (!this.seen.asked(key, now, this.answerWindowMs)) {
      // no query for it in the capture: the victim's side of a reflection (or a capture that began after its query)
      const reflector = d.source();
      t.reflection.add(reflector, client, d.wireLength, now);
      for (const r of this.runners) r.reflected(reflector, client, d.family, f, at, length, d.wireLength, now);
    }
    // a TC stand-in or an error (SERVFAIL of a loaded resolver, REFUSED) is no answer a client asked for (collateral.ts)
    const rcode = f[at + 3]! & 0x0f;
    const answer = (f[at + 2]! & 0x02) === 0 && (rcode === 0 || rcode === 3);
    for (const r of this.runners) r.udpReply(key, d.dstPort, id, d.wireLength, client, d.family, now, answer);
  }

  /** A TCP segment from a client to a DNS port (a SYN too: it can complete a handshake); the queries it completes go to tcpQuery. */
  private tcpFromClient(): void {
    if (this.notServer(true)) return;
    const d = this.decoded;
    const client = d.source();
    for (const r of this.runners) r.tcpSender(client, d.family);
    this.tcpClient = client;
    this.tcpFamily = d.family;
    this.tcp.segment(`${client}#${d.srcPort}#${d.dstPort}`, d.tcpSeq, d.tcpFlags, d.payload, false, this.onTcpQuery);
  }

  /** A TCP segment from a DNS server to a client; the answers it completes go to tcpAnswer. */
  private tcpFromServer(): void {
    if (this.notServer(false)) return;
    const d = this.decoded;
    this.tcp.segment(`${d.destination()}#${d.dstPort}#${d.srcPort}#a`, d.tcpSeq, d.tcpFlags, d.payload, true, this.onTcpAnswer);
  }

  private readonly onTcpQuery = (msg: Buffer): void => this.tcpQuery(msg);
  private readonly onTcpAnswer = (msg: Buffer): void => this.tcpAnswer(msg);

  /** A DNS message a client sent over TCP (a view, valid during the call). */
  private tcpQuery(msg: Buffer): void {
    const parsed = parseQuery(msg);
    if (parsed === null) return;
    this.totals.tcpQueries++;
    const ctx: QueryContext = { query: msg, parsed, clientAddress: this.tcpClient, family: this.tcpFamily, proto: 'tcp' };
    for (const r of this.runners) r.tcpQuery(ctx, this.now);
  }

  /** A DNS answer a server sent over TCP. */
  private tcpAnswer(msg: Buffer): void {
    this.totals.tcpReplies++;
    this.totals.tcpReplyBytes += msg.length;
    for (const r of this.runners) r.tcpReply(msg.length);
  }
}
