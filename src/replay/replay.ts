// The replay loop: frames from the captures, in order, decoded once and handed
// to every policy runner (one per configuration of a sweep) on the capture's
// own clock. A query is a DNS message with QR=0 to a DNS port, a reply one
// with QR=1 from it; the runners pair them by client address, port and ID.
// Once a second of capture time each runner does what the live process's
// timers do; a second in which nothing could change is skipped, so a gap of a
// day in a capture costs no more than one of a second (docs/replay.md).
// Fragments are reassembled first (reassembly.ts); answers whose query the
// capture does not hold are tallied by reflector and target (reflection.ts).
// A capture that breaks off (truncated, corrupt) ends its file there: what was
// read before is replayed and reported, and the error is kept for the report.
import { CaptureError, CaptureReader, type Frame } from './capture.js';
import { Decoded, LINK_RAW, PROTO_TCP, type SkipReason } from './packet.js';
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

interface ReplayOptions {
  /** DNS ports: 53 and the ports the config listens on */
  readonly ports: ReadonlySet<number>;
  /** when set, only traffic to and from these server addresses */
  readonly servers?: ReadonlySet<string>;
  /** called now and then with bytes read and the total size of all captures */
  readonly progress?: (done: number, total: number) => void;
  /** TCP flows followed at once */
  readonly maxTcpFlows?: number;
  /** the window in which an answer's query counts as captured (backend_timeout_ms) */
  readonly answerWindowMs?: number;
}

const TICK_MS = 1000;
/** seconds ticked one by one after a frame while something is still changing; past them, the gap is ticked once */
const MAX_TICKS_PER_FRAME = 3600;

/** A UDP query as the replay hands it to the runners: `holders` counts those that keep it pending. */
interface PooledQuery extends QueryContext {
  holders: number;
}

function newTotals(files: string[]): CaptureTotals {
  return {
    files, bytesRead: 0, packets: 0,
    skipped: { link_type: 0, not_ip: 0, not_udp_tcp: 0, short: 0, not_dns_port: 0, not_server: 0, not_dns: 0, internal_error: 0 },
    reassembly: new Reassembler().stats,
    cutBySnaplen: 0, udpQueries: 0, udpQueryBytes: 0, udpReplies: 0, udpReplyBytes: 0,
    tcpSegments: 0, tcpQueries: 0, tcpReplies: 0, tcpReplyBytes: 0, tcpGapBytes: 0, tcpResyncBytes: 0, tcpMidStream: 0,
    reflection: new ReflectionTable(), firstTs: 0, lastTs: 0, outOfOrder: 0, captureErrors: [], internalError: null,
  };
}

/** Replays `files` in the order given (as tcpdump -C/-G names them) through every runner. */
export function replay(files: string[], runners: readonly PolicyRunner[], opts: ReplayOptions): CaptureTotals {
  const totals = newTotals(files);
  const d = new Decoded();
  const tcp = new TcpStreams(opts.maxTcpFlows ?? 65_536);
  const frags = new Reassembler();
  totals.reassembly = frags.stats;
  const seen = new QuerySeen();
  const reflection = totals.reflection;
  const answerWindow = opts.answerWindowMs ?? 2000;
  // a bitmap: a Set lookup per packet for each direction costs more
  const ports = new Uint8Array(65_536);
  for (const p of opts.ports) ports[p] = 1;
  const servers = opts.servers;
  let now = -1;
  let nextTick = 0;
  const readers: CaptureReader[] = [];
  try {
    for (const f of files) readers.push(new CaptureReader(f));
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
  const totalSize = readers.reduce((a, r) => a + r.size, 0);
  const pool = new QueryPool();
  // a runner is done with a pending query (answered, timed out, replaced or evicted): the last one returns its copy
  const release = (ctx: QueryContext): void => {
    if (--(ctx as PooledQuery).holders === 0) pool.give(ctx.query);
  };
  for (const r of runners) r.release = release;
  let doneBefore = 0;
  let sinceProgress = 0;
  /** the byte offset of the frame being replayed, for the report of a fault */
  let frameAt = 0;

  const idle = (): boolean => {
    for (const r of runners) if (!r.idle()) return false;
    return true;
  };

  /** the ticks due by `now`, on the grid of whole seconds after the first frame */
  const tickDue = (): void => {
    let n = 0;
    while (nextTick <= now) {
      if (idle() || n >= MAX_TICKS_PER_FRAME) {
        // nothing would change (or nothing more, after an hour of ticks): one tick at the last second due, at most
        const last = totals.firstTs + Math.floor((now - totals.firstTs) / TICK_MS) * TICK_MS;
        if (n >= MAX_TICKS_PER_FRAME) for (const r of runners) r.tick(last);
        nextTick = last + TICK_MS > now ? last + TICK_MS : now + TICK_MS;
        return;
      }
      for (const r of runners) r.tick(nextTick);
      nextTick += TICK_MS;
      n++;
    }
  };

  const onTcpQuery = (msg: Buffer, client: string, family: 4 | 6): void => {
    const parsed = parseQuery(msg);
    if (parsed === null) return;
    totals.tcpQueries++;
    const ctx: QueryContext = { query: msg, parsed, clientAddress: client, family, proto: 'tcp' };
    for (const r of runners) r.tcpQuery(ctx, now);
  };

  const onTcpAnswer = (msg: Buffer): void => {
    totals.tcpReplies++;
    totals.tcpReplyBytes += msg.length;
    for (const r of runners) r.tcpReply(msg.length);
  };

  /** one decoded UDP or TCP packet (a frame, or a reassembled datagram) */
  const packet = (): void => {
    const toServer = ports[d.dstPort] === 1;
    const fromServer = ports[d.srcPort] === 1;
    if (!toServer && !fromServer) {
      totals.skipped.not_dns_port++;
      return;
    }
    if (d.proto === PROTO_TCP) {
      totals.tcpSegments++;
      // both ports DNS (server to server): the lower port is taken as the server's
      const clientToServer = toServer && (!fromServer || d.dstPort <= d.srcPort);
      if (clientToServer) {
        if (servers && !servers.has(d.destination())) {
          totals.skipped.not_server++;
          return;
        }
        const client = d.source();
        for (const r of runners) r.tcpSender(client, d.family);
        const family = d.family;
        tcp.segment(`${client}#${d.srcPort}#${d.dstPort}`, d.tcpSeq, d.tcpFlags, d.payload, false, (m) => onTcpQuery(m, client, family));
      } else {
        if (servers && !servers.has(d.source())) {
          totals.skipped.not_server++;
          return;
        }
        tcp.segment(`${d.destination()}#${d.dstPort}#${d.srcPort}#a`, d.tcpSeq, d.tcpFlags, d.payload, true, onTcpAnswer);
      }
      return;
    }
    // the DNS message is bytes [at, at + length) of the frame, read in place: views and copies cost more than the rest
    const f = d.frame;
    const at = d.payloadStart;
    const length = d.payloadEnd - at;
    if (d.wireLength < HEADER_LEN || length < HEADER_LEN) {
      totals.skipped.not_dns++;
      return;
    }
    const isReply = (((f[at + 2]! << 8) | f[at + 3]!) & FLAG_QR) !== 0;
    if (!isReply && toServer) {
      if (servers && !servers.has(d.destination())) {
        totals.skipped.not_server++;
        return;
      }
      const client = d.source();
      const slot = d.slot;
      totals.udpQueries++;
      totals.udpQueryBytes += d.wireLength;
      // a copy: the reader reuses its buffer, and a pending query must outlive this frame
      const query = pool.copy(f, at, length);
      const parsed = length === d.wireLength ? parseQuery(query) : null;
      if (parsed === null) {
        pool.give(query);
        for (const r of runners) r.malformed(client, d.family, d.wireLength, now);
        return;
      }
      const ctx: PooledQuery = { query, parsed, clientAddress: client, family: d.family, proto: 'udp', holders: 0 };
      const key = pairKey(d.srcPort, parsed.id, d.addressBits(true));
      seen.query(key, now);
      for (const r of runners) if (r.udpQuery(ctx, key, d.srcPort, now, slot)) ctx.holders++;
      if (ctx.holders === 0) pool.give(query);
    } else if (isReply && fromServer) {
      if (servers && !servers.has(d.source())) {
        totals.skipped.not_server++;
        return;
      }
      const client = d.destination();
      const family = d.family;
      totals.udpReplies++;
      totals.udpReplyBytes += d.wireLength;
      // the policy judges a reply by its length on the wire, which snaplen may have cut in the capture
      if (length < d.wireLength) totals.cutBySnaplen++;
      const id = (f[at]! << 8) | f[at + 1]!;
      const key = pairKey(d.dstPort, id, d.addressBits(false));
      if (!seen.asked(key, now, answerWindow)) {
        // no query for it in the capture: the victim's side of a reflection (or a capture that began after its query)
        const reflector = d.source();
        reflection.add(reflector, client, d.wireLength, now);
        for (const r of runners) r.reflected(reflector, client, family, f, at, length, d.wireLength, now);
      }
      // a TC stand-in or an error (SERVFAIL of a loaded resolver, REFUSED) is no answer a client asked for (collateral.ts)
      const rcode = f[at + 3]! & 0x0f;
      const answer = (f[at + 2]! & 0x02) === 0 && (rcode === 0 || rcode === 3);
      for (const r of runners) r.udpReply(key, d.dstPort, id, d.wireLength, client, family, now, answer);
    } else {
      totals.skipped.not_dns++;
    }
  };

  const readAll = (reader: CaptureReader): void => {
    let frame: Frame | null;
    while ((frame = reader.next()) !== null) {
      totals.packets++;
      frameAt = frame.offset;
      if (++sinceProgress === 65_536) {
        sinceProgress = 0;
        opts.progress?.(doneBefore + reader.position, totalSize);
      }
      // the capture's clock, never backwards (merged interfaces may be slightly out of order)
      const ts = frame.ts;
      if (now < 0) {
        now = ts;
        totals.firstTs = ts;
        nextTick = ts + TICK_MS;
      } else if (ts > now) {
        now = ts;
      } else if (ts < now) {
        totals.outOfOrder++;
      }
      if (now >= nextTick) tickDue();
      const skip = d.decode(frame.buffer, frame.linkType, frame.start, frame.end);
      if (skip !== null) {
        if (skip !== 'fragment') {
          totals.skipped[skip]++;
          continue;
        }
        // a fragment: the datagram is decoded once its last fragment is in, at this frame's time
        const whole = frags.add(d, now);
        if (whole === null) continue;
        const again = d.decode(whole.packet, LINK_RAW, 0, whole.stop);
        if (again !== null) {
          // a reassembled datagram is never a fragment again
          if (again !== 'fragment') totals.skipped[again]++;
          continue;
        }
      }
      packet();
    }
  };

  try {
    for (const reader of readers) {
      for (;;) {
        try {
          readAll(reader);
          break;
        } catch (err) {
          if (err instanceof CaptureError) {
            // the file breaks off here: what came before it stands, the next file is read
            totals.captureErrors.push({ file: err.file, offset: err.offset, message: err.message });
            break;
          }
          // a fault of our own on one frame: counted, the frame skipped, the rest read (the fuzz tests keep this at 0)
          totals.skipped.internal_error++;
          totals.internalError ??= `${(err as Error).message ?? String(err)} (frame at byte offset ${frameAt} of ${reader.file})`;
        }
      }
      doneBefore += reader.size;
      totals.bytesRead += reader.size;
      opts.progress?.(doneBefore, totalSize);
    }
  } finally {
    for (const r of readers) r.close();
  }
  totals.lastTs = Math.max(now, totals.firstTs);
  frags.finish(totals.lastTs);
  totals.tcpGapBytes = tcp.gaps;
  totals.tcpResyncBytes = tcp.resyncSkipped;
  totals.tcpMidStream = tcp.midStream;
  return totals;
}
