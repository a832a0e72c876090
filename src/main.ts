// Composition root of the single-process frontend (workers: 1): the data plane,
// the enforcer that owns the block set, metrics. No logic of its own beyond the
// order of start and stop.
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { Logger } from 'pino';
import type { RuntimeConfig } from './config/compile.js';
import type { Config } from './config/schema.js';
import { reloadConfig, type ReloadPlan } from './config/reload.js';
import { formatHostPort } from './config/address.js';
import { createRegistry } from './metrics/registry.js';
import { startMetricsServer } from './metrics/server.js';
import { operatorRoutes } from './metrics/api.js';
import { BudgetTable } from './policy/budgets.js';
import { startEnforcer } from './enforce/start.js';
import type { Enforcer } from './enforce/enforcer.js';
import { clock, startDataplane } from './dataplane.js';

export interface Frontend {
  readonly enforcer: Enforcer;
  /** applies the reloadable keys of `next`; returns what changed */
  reload(next: Config): ReloadPlan;
  close(): Promise<void>;
}

export async function startFrontend(runtime: RuntimeConfig, log: Logger): Promise<Frontend> {
  let config = runtime.source;
  let settings = runtime.policy;
  const { enforcer, loaded } = await startEnforcer(runtime, () => settings, log);
  const budgets = new BudgetTable(config.policy.large_response.max_tracked);
  const dataplane = await startDataplane(runtime, { budgets, blocks: enforcer.blocks, onOffender: (o, now) => enforcer.onOffender(o, now) }, log);
  const registry = createRegistry({
    ...dataplane.sources,
    blockedClients: () => enforcer.blockedCount(),
    blocksByMode: () => enforcer.stats.blocksByMode,
    kernelErrors: () => enforcer.stats.kernelErrors,
    enforcementDegraded: () => enforcer.stats.degraded,
  });
  const metricsServer: http.Server = await startMetricsServer(runtime.metricsListen, {
    registry,
    healthy: () => dataplane.pool.anyUp,
    routes: operatorRoutes({
      enforcer,
      top: async (n) => budgets.top(n, clock()),
      metricsJson: () => registry.getMetricsAsJSON(),
    }),
  });
  logStarted(log, runtime, enforcer, loaded, 1);

  return {
    enforcer,
    reload(next: Config): ReloadPlan {
      const r = reloadConfig(config, next);
      ({ config, settings } = r);
      dataplane.applySettings(settings);
      log.level = config.log.level;
      return r.plan;
    },
    async close(): Promise<void> {
      await dataplane.close();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      metricsServer.closeAllConnections();
      await enforcer.close();
    },
  };
}

export function logStarted(log: Logger, runtime: RuntimeConfig, enforcer: Enforcer, loaded: number, workers: number): void {
  log.info(
    {
      udp: runtime.listenUdp.map(formatHostPort),
      tcp: runtime.listenTcp.map(formatHostPort),
      backends: runtime.backends.map((b) => ({ address: b.name, weight: b.weight, proxy_protocol: b.proxyProtocol })),
      workers,
      block_mode: enforcer.mode,
      blocks_loaded: loaded,
      metrics: formatHostPort(runtime.metricsListen),
    },
    'ampguard started',
  );
}

export function readResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

export { clock };
