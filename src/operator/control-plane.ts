// The control plane of the process that owns the block set, wired one way for
// the single-process frontend (src/main.ts) and the cluster primary
// (src/cluster/primary.ts): the enforcement metrics, the HTTP listener of
// metrics.listen with the operator routes behind the control guard, the start
// line, and a stop that drops every HTTP connection (docs/security.md).
import type http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../config/compile.js';
import { formatHostPort } from '../config/address.js';
import { registerEnforcementMetrics } from '../metrics/registry.js';
import { startHttpListener } from '../metrics/http-listener.js';
import type { Enforcer } from '../enforce/enforcer.js';
import type { TopTalker } from '../policy/budgets.js';
import { operatorRoutes, type ControlGuard } from './api.js';
import { ensureToken } from './token.js';
import type { HealthVerdict } from './health.js';

/** Where the operator's token lives (metrics.token_file, resolved against the config file's directory). */
export interface ControlOptions {
  readonly tokenFile: string;
  /** fleet.key_file resolved against the config file's directory ('' when unset) */
  readonly fleetKeyFile?: string;
}

interface ControlPlaneParts {
  readonly runtime: RuntimeConfig;
  readonly enforcer: Enforcer;
  /** the registry with the data plane's metrics (this process's, or the sum of the workers'); the enforcement metrics are added here */
  readonly registry: Registry;
  /** what /healthz answers (operator/health.ts) */
  health(): HealthVerdict;
  /** the top talkers by large-reply bytes in the last minute */
  top(n: number): Promise<TopTalker[]>;
  readonly control: ControlOptions;
  readonly log: Logger;
}

/** Starts the HTTP listener of metrics.listen: /metrics, /healthz, the dashboard and /api/*. */
export function startControlPlane(p: ControlPlaneParts): Promise<http.Server> {
  const e = p.enforcer;
  registerEnforcementMetrics(p.registry, {
    blockedClients: () => e.blockedCount(),
    blocksByMode: () => e.stats.blocksByMode,
    kernelErrors: () => e.stats.kernelErrors,
    kernelRejected: () => e.stats.kernelRejected,
    blocksRefused: () => e.stats.refused,
    enforcementDegraded: () => e.stats.degraded,
    enforcementMode: () => e.mode,
    kernelChecks: () => e.reconciler.checks,
    kernelRepairs: () => e.reconciler.repairs,
    kernelQueueDepth: () => e.pending,
  });
  return startHttpListener(p.runtime.metricsListen, {
    registry: p.registry,
    health: () => p.health(),
    errorLog: p.log.child({ module: 'http' }),
    routes: operatorRoutes({ enforcer: e, top: (n) => p.top(n), metricsJson: () => p.registry.getMetricsAsJSON() }, controlGuard(p.runtime, p.control, p.log)),
  });
}

/**
 * The token that guards the API's state changes, made at the first start. When
 * it can be neither read nor made, ampguard still serves DNS and its read-only
 * pages, and refuses every change through the API (docs/security.md).
 */
function controlGuard(runtime: RuntimeConfig, control: ControlOptions, log: Logger): ControlGuard {
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
