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
import { operatorRoutes, type ControlGuard } from './metrics/api.js';
import { ensureToken } from './metrics/token.js';
import { BudgetTable } from './policy/budgets.js';
import { startEnforcer } from './enforce/start.js';
import type { Enforcer } from './enforce/enforcer.js';
import { clock, startDataplane } from './dataplane.js';

export interface Frontend {
  readonly enforcer: Enforcer;
  /** settles with the reason when the service cannot go on (workers that keep dying) */
  readonly failed?: Promise<string>;
  /** applies the reloadable keys of `next`; returns what changed */
  reload(next: Config): ReloadPlan;
  close(): Promise<void>;
}

/** Where the operator's token lives (metrics.token_file, resolved against the config file's directory). */
export interface ControlOptions {
  readonly tokenFile: string;
}

/**
 * The token that guards the API's state changes, made at the first start. When
 * it can be neither read nor made, ampguard still serves DNS and its read-only
 * pages, and refuses every change through the API (docs/security.md).
 */
export function controlGuard(runtime: RuntimeConfig, control: ControlOptions, log: Logger): ControlGuard {
  try {
    return { listen: runtime.metricsListen, token: ensureToken(control.tokenFile) };
  } catch (err) {
    const tokenError = `${control.tokenFile}: ${(err as Error).message}`;
    log.warn({ token_file: control.tokenFile, err: (err as Error).message }, 'no control token: block changes through the API are refused');
    return { listen: runtime.metricsListen, token: null, tokenError };
  }
}

/** Closes an HTTP listener and every connection on it now, idle, keep-alive or half-sent alike. */
export function closeHttp(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

export async function startFrontend(runtime: RuntimeConfig, log: Logger, control: ControlOptions): Promise<Frontend> {
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
    kernelRejected: () => enforcer.stats.kernelRejected,
    blocksRefused: () => enforcer.stats.refused,
    enforcementDegraded: () => enforcer.stats.degraded,
  });
  const metricsServer: http.Server = await startMetricsServer(runtime.metricsListen, {
    registry,
    healthy: () => dataplane.pool.anyUp,
    errorLog: log.child({ module: 'http' }),
    routes: operatorRoutes(
      {
        enforcer,
        top: async (n) => budgets.top(n, clock()),
        metricsJson: () => registry.getMetricsAsJSON(),
      },
      controlGuard(runtime, control, log),
    ),
  });
  logStarted(log, runtime, enforcer, loaded, 1, control);

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
      // stop taking work on every listener at once; a slow or keep-alive HTTP
      // client must not hold the stop (closeHttp drops its connection)
      await Promise.all([closeHttp(metricsServer), dataplane.close()]);
      await enforcer.close();
    },
  };
}

export function logStarted(log: Logger, runtime: RuntimeConfig, enforcer: Enforcer, loaded: number, workers: number, control: ControlOptions): void {
  log.info(
    {
      udp: runtime.listenUdp.map(formatHostPort),
      tcp: runtime.listenTcp.map(formatHostPort),
      backends: runtime.backends.map((b) => ({ address: b.name, weight: b.weight, proxy_protocol: b.proxyProtocol })),
      workers,
      block_mode: enforcer.mode,
      blocks_loaded: loaded,
      metrics: formatHostPort(runtime.metricsListen),
      token_file: control.tokenFile,
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
