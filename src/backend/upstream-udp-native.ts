// The UDP socket to one backend on the batched-UDP addon (docs/performance.md):
// connected like backend/upstream-udp.ts's, queries queued and sent in one sendmmsg
// per loop turn (a PROXY v2 header and the query as one datagram), replies received
// a batch per call.
import type { Logger } from 'pino';
import type { BackendSpec } from '../config/compile.js';
import type { UdpSender } from './pool.js';
import { META, STAT_SLOTS, type NativeBinding, type NativeUdpSocket } from '../native/index.js';
import { copyOut } from '../net/bytes.js';

/** a reply can be as large as a datagram gets */
const REPLY_SLOT_BYTES = 65536;
const REPLY_BATCH = 32;
const BUFFER_BYTES = 4 << 20;

export class NativeUdpUpstream implements UdpSender {
  private readonly socket: NativeUdpSocket;
  private readonly arena: Buffer;
  private readonly meta: Int32Array;
  private readonly fields: number;

  constructor(
    private readonly spec: BackendSpec,
    private readonly onReply: (reply: Buffer) => void,
    private readonly log: Logger,
    binding: NativeBinding,
    /** told when a batch of replies starts and ends (UdpPath: one clock reading per batch) */
    private readonly batchClock?: { beginBatch(): void; endBatch(): void },
  ) {
    const batch = Math.min(REPLY_BATCH, binding.maxBatch);
    this.fields = binding.metaFields;
    this.arena = Buffer.alloc(REPLY_SLOT_BYTES * batch);
    this.meta = new Int32Array(batch * this.fields);
    const addrs = new Uint8Array(batch * 16);
    this.socket = new binding.UdpSocket(spec.address.family, this.arena, this.meta, addrs, REPLY_SLOT_BYTES, batch, (n) => this.onBatch(n));
  }

  private onBatch(n: number): void {
    const { meta, arena, fields } = this;
    this.batchClock?.beginBatch();
    try {
      for (let i = 0; i < n; i++) {
        const len = meta[i * fields + META.len]!;
        if (len < 0) continue; // cannot happen with 64 KiB slots; never hand on a cut reply
        this.onReply(copyOut(arena, i * REPLY_SLOT_BYTES, len));
      }
    } finally {
      this.batchClock?.endBatch();
    }
  }

  start(): Promise<void> {
    try {
      this.socket.connect(this.spec.address.host, this.spec.address.port, BUFFER_BYTES);
      this.socket.start();
      return Promise.resolve();
    } catch (err) {
      this.socket.close();
      return Promise.reject(err as Error);
    }
  }

  send(query: Buffer, header: Buffer | null): void {
    if (!this.socket.send(header, query)) this.log.debug({ backend: this.spec.name }, 'send to backend not queued');
  }

  /** the addon's counters for this socket (native/index.ts STAT) */
  stats(): Float64Array {
    const out = new Float64Array(STAT_SLOTS);
    this.socket.stats(out);
    return out;
  }

  close(): void {
    this.socket.close();
  }
}
