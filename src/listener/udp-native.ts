// A UDP listen socket on the batched-UDP addon (docs/performance.md): one socket per
// process with SO_REUSEPORT, so the kernel spreads clients over the workers; datagrams
// arrive a batch per call and go to the same UDP path as the dgram listener's
// (listener/udp.ts), replies are queued and leave in one sendmmsg per loop turn.
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import type { UdpPath, UdpReplyTarget } from '../pipeline/udp-path.js';
import { META, STAT_SLOTS, type NativeBinding, type NativeUdpSocket } from '../native/index.js';
import { ipv6TextAt } from '../net/ip.js';
import { Ipv4Names } from '../net/ipv4-names.js';
import { copyOut } from '../net/bytes.js';
import { bindError } from '../net/bind-error.js';

/** a query longer than this is dropped as malformed (the pipeline counts it): no real query comes close */
const QUERY_SLOT_BYTES = 4096;
const BUFFER_BYTES = 4 << 20;
const EMPTY = Buffer.alloc(0);

export class NativeUdpListener implements UdpReplyTarget {
  private readonly socket: NativeUdpSocket;
  private readonly arena: Buffer;
  private readonly meta: Int32Array;
  private readonly addrs: Uint8Array;
  private readonly fields: number;
  /** client address strings, the same object for the same client (net/ipv4-names.ts) */
  private readonly v4Names = new Ipv4Names();

  constructor(
    readonly address: HostPort,
    private readonly path: UdpPath,
    private readonly log: Logger,
    binding: NativeBinding,
  ) {
    const batch = binding.maxBatch;
    this.fields = binding.metaFields;
    this.arena = Buffer.alloc(QUERY_SLOT_BYTES * batch);
    this.meta = new Int32Array(batch * this.fields);
    this.addrs = new Uint8Array(batch * 16);
    this.socket = new binding.UdpSocket(address.family, this.arena, this.meta, this.addrs, QUERY_SLOT_BYTES, batch, (n) => this.onBatch(n));
  }

  get localAddress(): string {
    return this.address.host;
  }
  get localPort(): number {
    return this.address.port;
  }

  /** n datagrams are in the arena; each is copied out because the next batch reuses the slots */
  private onBatch(n: number): void {
    this.path.beginBatch();
    try {
      this.handleBatch(n);
    } finally {
      this.path.endBatch();
    }
  }

  private handleBatch(n: number): void {
    const { meta, addrs, arena, fields } = this;
    for (let i = 0; i < n; i++) {
      const m = i * fields;
      const len = meta[m + META.len]!;
      const family = meta[m + META.family]!;
      if (family !== 4 && family !== 6) continue; // no source address at all: nothing to answer or charge
      const port = meta[m + META.port]!;
      const address = family === 4 ? this.v4Names.name(addrs, i * 16) : ipv6TextAt(addrs, i * 16);
      // an IPv4 client of a [::] socket: policy sees IPv4, the reply goes to the mapped address (as with dgram)
      const replyAddress = meta[m + META.mapped] === 1 ? `::ffff:${address}` : address;
      let msg: Buffer = EMPTY; // truncated (len -1): the path counts it and drops it as malformed
      if (len > 0) msg = copyOut(arena, i * QUERY_SLOT_BYTES, len);
      this.path.onQuery(msg, address, family, replyAddress, port, this);
    }
  }

  start(): Promise<void> {
    try {
      this.socket.bind(this.address.host, this.address.port, true, BUFFER_BYTES);
      this.socket.start();
      return Promise.resolve();
    } catch (err) {
      this.socket.close();
      return Promise.reject(bindError(err as Error, 'udp', this.address));
    }
  }

  /** the port the socket got (differs from localPort when bound to port 0) */
  boundPort(): number {
    return this.socket.localPort();
  }

  /** the addon's counters for this socket (native/index.ts STAT) */
  stats(): Float64Array {
    const out = new Float64Array(STAT_SLOTS);
    this.socket.stats(out);
    return out;
  }

  send(wire: Buffer, port: number, address: string): void {
    if (!this.socket.sendTo(wire, port, address)) this.log.debug({ port }, 'udp reply not queued');
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}
