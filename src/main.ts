// Composition root: wires the modules from a valid runtime config. No logic of
// its own beyond order of start and stop.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type http from 'node:http';
import type { Logger } from 'pino';
import type { RuntimeConfig } from './config/compile.js';
import { compilePolicy } from './config/compile.js';
import type { Config } from './config/schema.js';
import { applyPaths, planReload, type ReloadPlan } from './config/reload.js';
import { Counters } from './metrics/counters.js';
import { createRegistry } from './metrics/registry.js';
import { startMetricsServer } from './metrics/server.js';
import { blocksApi } from './metrics/admin-api.js';
import { BudgetTable } from './policy/budgets.js';
import type { PolicyEnv } from './policy/env.js';
import { BackendPool } from './backend/pool.js';
import { UdpUpstream } from './backend/upstream-udp.js';
import { connectTcpUpstream } from './backend/upstream-tcp.js';
import { Prober } from './backend/prober.js';
import { UdpPath, type PendingUdp } from './pipeline/udp-path.js';
import { TcpSession } from './pipeline/tcp-session.js';
import { UdpListener } from './listener/udp.js';
import { ConnectionLimits, TcpListener } from './listener/tcp.js';
import { createExec } from './enforce/exec.js';
import { kernelSettings } from './enforce/kernel-settings.js';
import { chooseSink } from './enforce/choose.js';
import { Enforcer } from './enforce/enforcer.js';
import { formatHostPort } from './config/address.js';

export interface Frontend {
  readonly enforcer: Enforcer;
  readonly counters: Counters;
  /** applies the reloadable keys of `next`; returns what changed */
  reload(next: Config): ReloadPlan;
  close(): Promise<void>;
}

const clock = (): number => performance.now();

export async function startFrontend(runtime: RuntimeConfig, log: Logger): Promise<Frontend> {
  let config = runtime.source;
  const counters = new Counters();
  const budgets = new BudgetTable(config.policy.large_response.max_tracked);
  const k = kernelSettings(config, runtime.listenUdp.map((a) => a.port));
  const sink = await chooseSink(config.block.mode, k, createExec(), log.child({ module: 'enforce' }));
  const enforcer = new Enforcer(sink, config.block.max_elements, () => env.settings, log.child({ module: 'enforce' }), clock);
  const env: PolicyEnv = { settings: runtime.policy, budgets, blocks: enforcer.blocks, counters };
  const reloaded = await enforcer.loadKernelMembers();

  const pool = new BackendPool<PendingUdp>(runtime.backends, config.max_in_flight);
  const udpPath = new UdpPath(env, pool, (o, now) => enforcer.onOffender(o, now), clock);
  const upstreams = pool.backends.map((b) => {
    const upstream = new UdpUpstream(b.spec, (reply) => udpPath.onReply(b, reply), log.child({ module: 'backend' }));
    b.sender = upstream;
    return upstream;
  });
  await Promise.all(upstreams.map((u) => u.start()));
  const sweepTimer = setInterval(() => udpPath.sweep(), Math.max(10, Math.min(100, runtime.policy.backendTimeoutMs / 4)));

  const limits = new ConnectionLimits(config.tcp);
  const newSession = (client: ConstructorParameters<typeof TcpSession>[0]): TcpSession =>
    new TcpSession(client, env, pool, connectTcpUpstream, config.tcp.max_in_flight_per_connection, clock);
  const listenLog = log.child({ module: 'listener' });
  const udpListeners = runtime.listenUdp.map((a) => new UdpListener(a, udpPath, listenLog));
  const tcpListeners = runtime.listenTcp.map((a) => new TcpListener(a, config.tcp, limits, counters, newSession, listenLog));
  await Promise.all([...udpListeners, ...tcpListeners].map((l) => l.start()));

  const prober = new Prober(pool.backends, config.health_check, log.child({ module: 'health' }), () => undefined);
  prober.start();

  const registry = createRegistry({
    counters,
    backends: pool.backends,
    blockedClients: () => enforcer.blockedCount(),
    trackedPrefixes: () => budgets.size,
    blocksByMode: () => enforcer.stats.blocksByMode,
    kernelErrors: () => enforcer.stats.kernelErrors,
    enforcementDegraded: () => enforcer.stats.degraded,
    tcpConnections: () => limits.open,
  });
  const metricsServer: http.Server = await startMetricsServer(runtime.metricsListen, {
    registry,
    healthy: () => pool.anyUp,
    routes: { '/api/blocks': blocksApi(enforcer) },
  });

  log.info(
    {
      udp: runtime.listenUdp.map(formatHostPort),
      tcp: runtime.listenTcp.map(formatHostPort),
      backends: runtime.backends.map((b) => ({ address: b.name, weight: b.weight, proxy_protocol: b.proxyProtocol })),
      block_mode: enforcer.mode,
      blocks_loaded: reloaded,
      metrics: formatHostPort(runtime.metricsListen),
    },
    'ampguard started',
  );

  return {
    enforcer,
    counters,
    reload(next: Config): ReloadPlan {
      const plan = planReload(config, next);
      config = applyPaths(config, next, plan.applied);
      env.settings = compilePolicy(config);
      log.level = config.log.level;
      return plan;
    },
    async close(): Promise<void> {
      clearInterval(sweepTimer);
      prober.stop();
      await Promise.all([...udpListeners, ...tcpListeners].map((l) => l.close()));
      for (const u of upstreams) u.close();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      metricsServer.closeAllConnections();
      await enforcer.close();
    },
  };
}

export function readResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}
