// Loads the batched-UDP addon (src/native/udp_batch.c, built by `npm run build:native`)
// and decides the UDP I/O mode from `udp_io` (docs/performance.md). Where the addon
// was not built or does not load, `auto` falls back to node:dgram and says so once.
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../config/package-root.js';
import type { Logger } from 'pino';

type UdpIoSetting = 'auto' | 'native' | 'dgram';
type UdpIoMode = 'native' | 'dgram';

/** The addon's socket (see udp_batch.c for the contract of each method). */
export interface NativeUdpSocket {
  bind(host: string, port: number, reusePort: boolean, bufferBytes: number): void;
  connect(host: string, port: number, bufferBytes: number): void;
  start(): void;
  /** queued for this loop turn's sendmmsg; false when dropped (bad address, queue full) */
  sendTo(wire: Uint8Array, port: number, host: string): boolean;
  send(header: Uint8Array | null, wire: Uint8Array): boolean;
  close(): void;
  localPort(): number;
  stats(into: Float64Array): void;
}

export interface NativeBinding {
  readonly UdpSocket: new (
    family: 4 | 6,
    arena: Uint8Array,
    meta: Int32Array,
    addrs: Uint8Array,
    slotSize: number,
    batch: number,
    onBatch: (count: number) => void,
  ) => NativeUdpSocket;
  /** one datagram to systemd's NOTIFY_SOCKET ("@name": abstract); 0 or the errno */
  readonly sdNotify?: (path: string, message: string) => number;
  readonly maxBatch: number;
  readonly metaFields: number;
  readonly statCount: number;
}

/** Layout of the per-datagram metadata (udp_batch.c META_*). */
export const META = { len: 0, port: 1, family: 2, mapped: 3 } as const;

/** `stats()` slots (udp_batch.c ST_*). */
export const STAT = { recvPackets: 0, recvBatches: 1, recvTruncated: 2, recvErrors: 3, sent: 4, sendCalls: 5, sendErrors: 6, sendDropped: 7, socketErrors: 8 } as const;
export const STAT_SLOTS = 9;


let loaded: { binding: NativeBinding | null; reason: string } | undefined;

/** The addon, or null with the reason; AMPGUARD_NATIVE_ADDON names another build (the ASan one). */
export function loadNative(): { binding: NativeBinding | null; reason: string } {
  if (loaded) return loaded;
  const override = process.env.AMPGUARD_NATIVE_ADDON;
  const path = override ? resolve(override) : [join(packageRoot(), 'src', 'native', 'build', 'Release', 'ampguard_udp.node')].find((p) => existsSync(p));
  if (process.platform !== 'linux') loaded = { binding: null, reason: `recvmmsg/sendmmsg need Linux (platform ${process.platform})` };
  else if (path === undefined) loaded = { binding: null, reason: 'addon not built (npm run build:native)' };
  else {
    try {
      const binding = createRequire(import.meta.url)(path) as NativeBinding;
      loaded = { binding, reason: `loaded ${path}` };
    } catch (err) {
      loaded = { binding: null, reason: `addon failed to load: ${(err as Error).message}` };
    }
  }
  return loaded;
}

interface UdpIo {
  readonly mode: UdpIoMode;
  /** set in native mode */
  readonly binding: NativeBinding | null;
}

let warned = false;

/** Says once per process that `auto` fell back to dgram, with the reason; nothing when the addon loads. */
export function warnUdpIoFallback(log: Logger): void {
  const { binding, reason } = loadNative();
  if (binding !== null || warned) return;
  warned = true;
  log.warn({ reason }, 'batched UDP I/O unavailable: using node:dgram');
}

/** The mode `udp_io` asks for; `native` without a loadable addon is a start error. */
export function resolveUdpIo(setting: UdpIoSetting, log: Logger): UdpIo {
  if (setting === 'dgram') return { mode: 'dgram', binding: null };
  const { binding, reason } = loadNative();
  if (binding !== null) return { mode: 'native', binding };
  if (setting === 'native') throw new Error(`udp_io: native, but ${reason}`);
  // a cluster worker leaves the warning to the primary, so N workers make one line, not N
  if (!cluster.isWorker) warnUdpIoFallback(log);
  return { mode: 'dgram', binding: null };
}
