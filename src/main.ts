// Composition root of the single-process frontend (workers: 1): the data plane,
// the enforcer that owns the block set, metrics. No logic of its own beyond the
// order of start and stop.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { RuntimeConfig } from './config/compile.js';
import type { Config } from './config/schema.js';
import type { ReloadPlan } from './config/reload.js';
import { LiveConfig } from './operator/live-config.js';
import { Registry } from 'prom-client';
import { registerDataplaneMetrics } from './metrics/registry.js';
import { closeHttp, logStarted, startControlPlane, type ControlOptions } from './operator/control-plane.js';
import { BudgetTable } from './policy/budgets.js';
import { startEnforcer } from './enforce/start.js';
import type { Enforcer } from './enforce/enforcer.js';
import { startDataplane } from './dataplane.js';
import { monotonicNow as clock } from './time/clock.js';
import { DataPathHealth, dataPathSample } from './operator/health.js';
import { debitAll, startFleet } from './fleet/start.js';

export interface Frontend {
  readonly enforcer: Enforcer;
  /** settles with the reason when the service cannot go on (workers that keep dying) */
  readonly failed?: Promise<string>;
  /** applies the reloadable keys of `next`; returns what changed */
  reload(next: Config): ReloadPlan;
  close(): Promise<void>;
}

export async function startFrontend(runtime: RuntimeConfig, log: Logger, control: ControlOptions): Promise<Frontend> {
  const live = new LiveConfig(runtime, log);
  const { enforcer, loaded } = await startEnforcer(runtime, () => live.settings, log);
  const budgets = new BudgetTable(live.config.policy.large_response.max_tracked);
  const dataplane = await startDataplane(runtime, { budgets, blocks: enforcer.blocks, onOffender: (o, now) => enforcer.onOffender(o, now) }, log);
  const registry = new Registry();
  registerDataplaneMetrics(registry, dataplane.sources);
  // the site's link (fleet.nats, docs/fleet.md): this process's charges go out, the peers' come in as debits
  let fleet;
  try {
    fleet = startFleet({
      runtime, enforcer, settings: () => live.settings, keyFile: control.fleetKeyFile ?? '', registry, log, clock,
      deliver: (d) => void (dataplane.sources.counters.tcpFollowUps += debitAll(budgets, d, live.settings, clock())),
    });
  } catch (err) {
    await Promise.all([dataplane.close(), enforcer.close()]);
    throw err;
  }
  if (fleet) {
    const batch = fleet.batch;
    budgets.onCharge = (key, cost, level) => batch.charge(key, cost, level === 'aggregate');
    budgets.onFollowUp = (key, question, level) => batch.followUp(key, question, level === 'prefix' ? 0 : 1);
  }
  // one process: its own data path is sampled as a worker's would be (operator/health.ts)
  const health = new DataPathHealth();
  const sample = (): void => health.beat(0, clock(), dataPathSample(dataplane.sources.counters, dataplane.pool.anyUp));
  sample();
  const healthTimer = setInterval(sample, 1000);
  healthTimer.unref();
  const metricsServer = await startControlPlane({
    runtime, enforcer, registry, control, log,
    health: () => health.verdict(clock(), 1),
    top: async (n) => budgets.top(n, clock()),
  });
  logStarted(log, runtime, enforcer, loaded, 1, control);

  return {
    enforcer,
    reload(next: Config): ReloadPlan {
      const plan = live.reload(next, enforcer);
      dataplane.applySettings(live.settings);
      return plan;
    },
    async close(): Promise<void> {
      // stop taking work on every listener at once; a slow or keep-alive HTTP
      // client must not hold the stop (closeHttp drops its connection)
      clearInterval(healthTimer);
      await fleet?.close();
      await Promise.all([closeHttp(metricsServer), dataplane.close()]);
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

export type { ControlOptions };
