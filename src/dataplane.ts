// Composition of the data plane: listeners, paths, backends, health checks and
// the policy tables, wired from a runtime config. Used as is by the
// single-process frontend (main.ts) and by every cluster worker.
import type { Logger } from 'pino';
import type { RuntimeConfig, PolicySettings } from './config/compile.js';
import { Counters } from './metrics/counters.js';
import { CappedLog } from './log/capped.js';
import { FaultBarrier } from './pipeline/barrier.js';
import { ladderTick } from './policy/ladder-tick.js';
import type { BudgetTable } from './policy/budgets.js';
import type { BlockTable } from './policy/block-table.js';
import type { PolicyEnv } from './policy/env.js';
import { prefixKey } from './policy/prefix.js';
import { RealClients } from './policy/real-clients.js';
import { BackendPool } from './backend/pool.js';
import { UdpUpstream } from './backend/upstream-udp.js';
import { NativeUdpUpstream } from './backend/upstream-udp-native.js';
import { connectTcpUpstream } from './backend/upstream-tcp.js';
import { TcpForwarder } from './backend/tcp-forwarder.js';
import { Prober } from './backend/prober.js';
import { UdpPath, type OffenderHandler, type PendingUdp } from './pipeline/udp-path.js';
import { TcpSession, type TcpClient } from './pipeline/tcp-session.js';
import { ClientShares } from './pipeline/client-shares.js';
import { UdpListener } from './listener/udp.js';
import { NativeUdpListener } from './listener/udp-native.js';
import { resolveUdpIo, STAT } from './native/index.js';
import type { UdpIoErrorKey, UdpIoSide } from './metrics/counters.js';
import { ConnectionLimits, TcpListener } from './listener/tcp.js';
import type { DataplaneSources } from './metrics/registry.js';

import { monotonicNow as clock } from './time/clock.js';

/** Adds one native socket's error counters (its `stats()` slots) to the totals by reason. */
function addSocketErrors(into: Record<UdpIoErrorKey, number>, side: UdpIoSide, stats: Float64Array): void {
  into[`${side}:socket_error`] += stats[STAT.socketErrors] ?? 0;
  into[`${side}:recv_error`] += stats[STAT.recvErrors] ?? 0;
  into[`${side}:recv_truncated`] += stats[STAT.recvTruncated] ?? 0;
  into[`${side}:send_error`] += stats[STAT.sendErrors] ?? 0;
  into[`${side}:send_dropped`] += stats[STAT.sendDropped] ?? 0;
}

interface DataplaneParts {
  readonly budgets: BudgetTable;
  readonly blocks: BlockTable;
  readonly onOffender: OffenderHandler;
}

interface Dataplane {
  readonly env: PolicyEnv<Counters>;
  readonly pool: BackendPool<PendingUdp>;
  /** what the metrics registry reads */
  readonly sources: DataplaneSources;
  applySettings(settings: PolicySettings): void;
  close(): Promise<void>;
}

export async function startDataplane(runtime: RuntimeConfig, parts: DataplaneParts, log: Logger): Promise<Dataplane> {
  const config = runtime.source;
  const counters = new Counters();
  // the clients that show they are real (TCP, small answers), for the collateral figure (docs/defence.md)
  const realClients = new RealClients();
  const env: PolicyEnv<Counters> = { settings: runtime.policy, budgets: parts.budgets, blocks: parts.blocks, counters, realClients };

  const pool = new BackendPool<PendingUdp>(runtime.backends, config.max_in_flight);
  const udpPath = new UdpPath(env, pool, parts.onOffender, clock, log.child({ module: 'udp' }));
  // batched native sockets or node:dgram under the same path (docs/performance.md)
  const udpIo = resolveUdpIo(config.udp_io, log);
  const native = udpIo.binding;
  const upstreams = pool.backends.map((b) => {
    const onReply = (reply: Buffer): void => udpPath.onReply(b, reply);
    const backendLog = log.child({ module: 'backend' });
    const upstream = native ? new NativeUdpUpstream(b.spec, onReply, backendLog, native, udpPath) : new UdpUpstream(b.spec, onReply, backendLog, counters.udpIoErrors);
    b.sender = upstream;
    return upstream;
  });
  await Promise.all(upstreams.map((u) => u.start()));
  const sweepTimer = setInterval(() => udpPath.sweep(), Math.max(10, Math.min(100, runtime.policy.backendTimeoutMs / 4)));
  // rung changes are state changes worth a line, but a spoofed flood makes thousands: capped (docs/defence.md)
  const ladderLog = new CappedLog(log.child({ module: 'ladder' }), 20);
  parts.budgets.onRung = (key, rung, level) =>
    ladderLog.info({ prefix: key, level, rung }, rung === 2 ? 'over budget: large replies answered with TC until TCP follow-ups are judged' : 'back under budget');
  // once a second, the keys on rung 2: back to rung 1 after a quiet spell (so the gauge stays true), blocked
  // when a judging window ended without TCP follow-ups even if their flood has stopped (docs/defence.md);
  // the replay judges with the same function on the capture's clock
  const judgingBarrier = new FaultBarrier(counters, log.child({ module: 'ladder' }));
  const judgingTimer = setInterval(() => {
    try {
      ladderTick(env, clock(), parts.onOffender);
    } catch (err) {
      judgingBarrier.fault('ladder_judging', err);
    }
  }, 1000);
  judgingTimer.unref();

  // Each worker gets its share of the TCP caps: the cluster hands connections out
  // round-robin, so across N workers a cap is held to within N-1 connections.
  const share = (n: number): number => Math.ceil(n / runtime.workers);
  const limits = new ConnectionLimits({
    ...config.tcp,
    max_connections: share(config.tcp.max_connections),
    max_connections_per_client: share(config.tcp.max_connections_per_client),
  });
  // upstream TCP is pooled per backend, shared by every client connection (docs/tcp.md)
  const tcpForwarder = new TcpForwarder(
    {
      connectionsPerBackend: share(config.tcp.upstream_connections_per_backend),
      connectionsPerClient: config.tcp.upstream_connections_per_client,
      connectTimeoutMs: config.tcp.upstream_connect_timeout_ms,
      queueTimeoutMs: config.tcp.upstream_queue_timeout_ms,
    },
    connectTcpUpstream,
    counters,
  );
  // each client prefix's share of the queries in flight upstream, over all its connections (docs/tcp.md)
  const shares = new ClientShares(share(config.tcp.max_in_flight_per_client));
  const newSession = (client: TcpClient): TcpSession => new TcpSession(client, env, pool, tcpForwarder, shares, clock);
  // per-client connection caps count a budget prefix, not an address: one /64 is one client
  const clientKey = (address: string, family: 4 | 6): string => prefixKey(address, family, env.settings.prefixV4, env.settings.prefixV6);
  const listenLog = log.child({ module: 'listener' });
  const udpListeners = runtime.listenUdp.map((a) => (native ? new NativeUdpListener(a, udpPath, listenLog, native) : new UdpListener(a, udpPath, listenLog, counters.udpIoErrors)));
  const tcpListeners = runtime.listenTcp.map((a) => new TcpListener(a, config.tcp, limits, clientKey, counters, newSession, listenLog));
  await Promise.all([...udpListeners, ...tcpListeners].map((l) => l.start()));

  // the addon counts its sockets' errors in C; their totals are copied into the counters
  // once a second (the dgram sockets count theirs as they happen)
  const nativeStatsTimer = setInterval(() => {
    const sockets: [UdpIoSide, { stats(): Float64Array }][] = [
      ...udpListeners.filter((l) => l instanceof NativeUdpListener).map((l) => ['listen', l] as [UdpIoSide, NativeUdpListener]),
      ...upstreams.filter((u) => u instanceof NativeUdpUpstream).map((u) => ['upstream', u] as [UdpIoSide, NativeUdpUpstream]),
    ];
    if (sockets.length === 0) return;
    for (const key of Object.keys(counters.udpIoErrors) as UdpIoErrorKey[]) counters.udpIoErrors[key] = 0;
    for (const [side, socket] of sockets) addSocketErrors(counters.udpIoErrors, side, socket.stats());
  }, 1000);
  nativeStatsTimer.unref();

  const prober = new Prober(pool.backends, config.health_check, log.child({ module: 'health' }));
  prober.start();

  return {
    env,
    pool,
    sources: {
      counters,
      backends: pool.backends,
      trackedPrefixes: () => parts.budgets.size,
      ladderPrefixes: () => ({ prefix: parts.budgets.truncatingCount('prefix'), aggregate: parts.budgets.truncatingCount('aggregate') }),
      collateralClients: () => realClients.collateral(env, clock()),
      maxTracked: parts.budgets.maxTracked,
      tcpConnections: () => limits.open,
      tcpUpstreamQueued: () => tcpForwarder.queued,
      udpIoMode: udpIo.mode,
    },
    applySettings(settings) {
      // networks whose budgets were turned off come off rung 2: their TC answers end now
      if (!settings.aggregate.enabled) for (const key of parts.budgets.truncatingKeys('aggregate')) parts.budgets.release('aggregate', key);
      env.settings = settings;
    },
    async close() {
      clearInterval(sweepTimer);
      clearInterval(judgingTimer);
      clearInterval(nativeStatsTimer);
      prober.stop();
      tcpForwarder.close();
      await Promise.all([...udpListeners, ...tcpListeners].map((l) => l.close()));
      for (const u of upstreams) u.close();
    },
  };
}
