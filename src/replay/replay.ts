// The replay loop: frames from the captures, in order, decoded once and handed
// to every policy runner (one per configuration of a sweep) on the capture's
// own clock. A query is a DNS message with QR=0 to a DNS port, a reply one
// with QR=1 from it; the runners pair them by client address, port and ID.
// Once a second of capture time each runner does what the live process's
// timers do (docs/replay.md).
import { CaptureReader, type Frame } from './capture.js';
import { Decoded, PROTO_TCP, type SkipReason } from './packet.js';
import { TcpStreams } from './tcp-streams.js';
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
  skipped: Record<SkipReason | 'not_dns_port' | 'not_server' | 'not_dns', number>;
  /** UDP replies shorter in the capture than on the wire (snaplen): their wire length is used */
  cutBySnaplen: number;
  udpQueries: number;
  udpQueryBytes: number;
  udpReplies: number;
  udpReplyBytes: number;
  tcpSegments: number;
  tcpQueries: number;
  tcpReplyBytes: number;
  tcpGapBytes: number;
  /** ms since the epoch, capture clock */
  firstTs: number;
  lastTs: number;
  /** frames whose timestamp went backwards (taken at the latest time seen) */
  outOfOrder: number;
}

export interface ReplayOptions {
  /** DNS ports: 53 and the ports the config listens on */
  readonly ports: ReadonlySet<number>;
  /** when set, only traffic to and from these server addresses */
  readonly servers?: ReadonlySet<string>;
  /** called now and then with bytes read and the total size of all captures */
  readonly progress?: (done: number, total: number) => void;
  /** TCP flows followed at once */
  readonly maxTcpFlows?: number;
}

const SETTLE_MS = 1000;
/** a jump in capture time beyond this many settles is done as one (a gap of days is not a day of work) */
const MAX_SETTLES_PER_FRAME = 3600;

/** A UDP query as the replay hands it to the runners: `holders` counts those that keep it pending. */
interface PooledQuery extends QueryContext {
  holders: number;
}

export function newTotals(files: string[]): CaptureTotals {
  return {
    files, bytesRead: 0, packets: 0,
    skipped: { link_type: 0, not_ip: 0, fragment: 0, not_udp_tcp: 0, short: 0, not_dns_port: 0, not_server: 0, not_dns: 0 },
    cutBySnaplen: 0, udpQueries: 0, udpQueryBytes: 0, udpReplies: 0, udpReplyBytes: 0,
    tcpSegments: 0, tcpQueries: 0, tcpReplyBytes: 0, tcpGapBytes: 0, firstTs: 0, lastTs: 0, outOfOrder: 0,
  };
}

/** Replays `files` in the order given (as tcpdump -C/-G names them) through every runner. */
export function replay(files: string[], runners: readonly PolicyRunner[], opts: ReplayOptions): CaptureTotals {
  const totals = newTotals(files);
  const d = new Decoded();
  const tcp = new TcpStreams(opts.maxTcpFlows ?? 65_536);
  // a bitmap: a Set lookup per packet for each direction costs more
  const ports = new Uint8Array(65_536);
  for (const p of opts.ports) ports[p] = 1;
  const servers = opts.servers;
  let now = -1;
  let nextSettle = 0;
  const sizes = files.map((f) => new CaptureReader(f));
  const totalSize = sizes.reduce((a, r) => a + r.size, 0);
  const pool = new QueryPool();
  // a runner is done with a pending query (answered, timed out, replaced or evicted): the last one returns its copy
  const release = (ctx: QueryContext): void => {
    if (--(ctx as PooledQuery).holders === 0) pool.give(ctx.query);
  };
  for (const r of runners) r.release = release;
  let doneBefore = 0;
  let sinceProgress = 0;

  const tick = (at: number): void => {
    for (const r of runners) r.tick(at);
  };

  const onTcpMessage = (msg: Buffer, client: string, family: 4 | 6): void => {
    const parsed = parseQuery(msg);
    if (parsed === null) return;
    totals.tcpQueries++;
    const ctx: QueryContext = { query: msg, parsed, clientAddress: client, family, proto: 'tcp' };
    for (const r of runners) r.tcpQuery(ctx, now);
  };

  try {
    for (const reader of sizes) {
      let frame: Frame | null;
      while ((frame = reader.next()) !== null) {
        totals.packets++;
        if (++sinceProgress === 65_536) {
          sinceProgress = 0;
          opts.progress?.(doneBefore + reader.position, totalSize);
        }
        // the capture's clock, never backwards (merged interfaces may be slightly out of order)
        const ts = frame.ts;
        if (now < 0) {
          now = ts;
          totals.firstTs = ts;
          nextSettle = ts + SETTLE_MS;
        } else if (ts > now) {
          now = ts;
        } else if (ts < now) {
          totals.outOfOrder++;
        }
        if (now >= nextSettle) {
          let n = 0;
          while (nextSettle <= now && n++ < MAX_SETTLES_PER_FRAME) {
            tick(nextSettle);
            nextSettle += SETTLE_MS;
          }
          if (nextSettle <= now) {
            tick(now);
            nextSettle = now + SETTLE_MS;
          }
        }
        const skip = d.decode(frame.buffer, frame.linkType, frame.start, frame.end);
        if (skip !== null) {
          totals.skipped[skip]++;
          continue;
        }
        const toServer = ports[d.dstPort] === 1;
        const fromServer = ports[d.srcPort] === 1;
        if (!toServer && !fromServer) {
          totals.skipped.not_dns_port++;
          continue;
        }
        if (d.proto === PROTO_TCP) {
          totals.tcpSegments++;
          // both ports DNS (server to server): the lower port is taken as the server's
          const clientToServer = toServer && (!fromServer || d.dstPort <= d.srcPort);
          if (clientToServer) {
            if (servers && !servers.has(d.destination())) {
              totals.skipped.not_server++;
              continue;
            }
            const client = d.source();
            for (const r of runners) r.tcpSender(client, d.family);
            const family = d.family;
            tcp.segment(`${client}#${d.srcPort}#${d.dstPort}`, d.tcpSeq, d.tcpFlags, d.payload, (m) => onTcpMessage(m, client, family));
          } else {
            if (servers && !servers.has(d.source())) {
              totals.skipped.not_server++;
              continue;
            }
            if (d.payload.length > 0) {
              totals.tcpReplyBytes += d.payload.length;
              for (const r of runners) r.tcpReply(d.payload.length);
            }
          }
          continue;
        }
        // the DNS message is bytes [at, at + length) of the frame, read in place: views and copies cost more than the rest
        const f = d.frame;
        const at = d.payloadStart;
        const length = d.payloadEnd - at;
        if (d.wireLength < HEADER_LEN || length < HEADER_LEN) {
          totals.skipped.not_dns++;
          continue;
        }
        const isReply = (((f[at + 2]! << 8) | f[at + 3]!) & FLAG_QR) !== 0;
        if (!isReply && toServer) {
          if (servers && !servers.has(d.destination())) {
            totals.skipped.not_server++;
            continue;
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
            continue;
          }
          const ctx: PooledQuery = { query, parsed, clientAddress: client, family: d.family, proto: 'udp', holders: 0 };
          const key = pairKey(d.srcPort, parsed.id, d.addressBits(true));
          for (const r of runners) if (r.udpQuery(ctx, key, d.srcPort, now, slot)) ctx.holders++;
          if (ctx.holders === 0) pool.give(query);
        } else if (isReply && fromServer) {
          if (servers && !servers.has(d.source())) {
            totals.skipped.not_server++;
            continue;
          }
          const client = d.destination();
          totals.udpReplies++;
          totals.udpReplyBytes += d.wireLength;
          // the policy judges a reply by its length on the wire, which snaplen may have cut in the capture
          if (length < d.wireLength) totals.cutBySnaplen++;
          const id = (f[at]! << 8) | f[at + 1]!;
          const key = pairKey(d.dstPort, id, d.addressBits(false));
          for (const r of runners) r.udpReply(key, d.dstPort, id, d.wireLength, client, d.family, now);
        } else {
          totals.skipped.not_dns++;
        }
      }
      doneBefore += reader.size;
      totals.bytesRead += reader.size;
      opts.progress?.(doneBefore, totalSize);
    }
  } finally {
    for (const r of sizes) r.close();
  }
  totals.lastTs = Math.max(now, totals.firstTs);
  totals.tcpGapBytes = tcp.gaps;
  return totals;
}
