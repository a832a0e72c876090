// The cluster primary: forks the workers (which share the listen sockets),
// owns the enforcer and the kernel set, relays budget charges between workers,
// fans blocks out to all of them, and serves metrics aggregated from them.
// It serves no DNS itself.
import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import { AggregatorRegistry, Registry } from 'prom-client';

type metric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];
type Question = { what: 'metrics' } | { what: 'top'; n: number };
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import { reloadConfig, type ReloadPlan } from '../config/reload.js';
import { registerEnforcementMetrics } from '../metrics/registry.js';
import { startMetricsServer, type MetricsText } from '../metrics/server.js';
import { operatorRoutes } from '../metrics/api.js';
import { mergeTop } from '../metrics/view.js';
import type { TopTalker } from '../policy/budgets.js';
import { startEnforcer } from '../enforce/start.js';
import { clock } from '../dataplane.js';
import { logStarted, type Frontend } from '../main.js';
import type { ToPrimary, ToWorker } from './messages.js';

const ASK_TIMEOUT_MS = 2000;
/** a dead worker's replacement waits this long, so a crash loop cannot spin */
const RESPAWN_DELAY_MS = 1000;

export async function startPrimary(runtime: RuntimeConfig, workerCount: number, log: Logger): Promise<Frontend> {
  let config = runtime.source;
  let settings = runtime.policy;
  let closing = false;
  let started = false;
  const { enforcer, loaded } = await startEnforcer(runtime, () => settings, log);
  const workers = new Set<Worker>();
  const broadcast = (m: ToWorker, except?: Worker): void => {
    for (const w of workers) if (w !== except && w.isConnected()) w.send(m);
  };
  enforcer.onChange = (c) => broadcast(c.kind === 'block' ? { t: 'block', prefix: c.prefix, ttlMs: c.ttlMs } : { t: 'unblock', prefix: c.prefix });

  let nextAskId = 0;
  const answers = new Map<number, (data: unknown) => void>();

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      workers.add(w);
      w.on('message', (m: ToPrimary) => {
        switch (m.t) {
          case 'ready':
            for (const b of enforcer.list()) w.send({ t: 'block', prefix: b.prefix, ttlMs: b.expiresInMs } satisfies ToWorker);
            resolve();
            break;
          case 'charges':
            broadcast({ t: 'debits', d: m.d }, w);
            break;
          case 'offender':
            enforcer.onOffender(m.o, clock());
            break;
          case 'answer':
            answers.get(m.id)?.(m.data);
            break;
        }
      });
      w.on('exit', (code, signal) => {
        workers.delete(w);
        if (closing) return;
        // A worker that cannot start (a port in use, say) fails the start: respawning it would loop.
        if (!started) return reject(new Error(`a worker exited before it was ready (${code ?? signal}); see its log line above`));
        log.error({ worker: w.id, code, signal }, 'worker died, starting another');
        setTimeout(() => void fork().catch((err: Error) => log.error({ err: err.message }, 'worker restart failed')), RESPAWN_DELAY_MS);
      });
    });
  try {
    await Promise.all(Array.from({ length: workerCount }, fork));
  } catch (err) {
    closing = true;
    for (const w of workers) w.kill();
    throw err;
  }
  started = true;

  const own = new Registry();
  registerEnforcementMetrics(own, {
    blockedClients: () => enforcer.blockedCount(),
    blocksByMode: () => enforcer.stats.blocksByMode,
    kernelErrors: () => enforcer.stats.kernelErrors,
    enforcementDegraded: () => enforcer.stats.degraded,
  });
  /** asks every worker; one that does not answer in time counts as an empty answer */
  const ask = <T>(question: Question, empty: T): Promise<T[]> =>
    Promise.all(
      [...workers].map(
        (w) =>
          new Promise<T>((resolve) => {
            const id = nextAskId++;
            const finish = (data: unknown): void => {
              clearTimeout(timer);
              answers.delete(id);
              resolve(data as T);
            };
            const timer = setTimeout(() => finish(empty), ASK_TIMEOUT_MS);
            answers.set(id, finish);
            w.send({ t: 'ask', id, ...question } as ToWorker);
          }),
      ),
    );
  const aggregate = async (): Promise<Registry> => {
    const parts = await Promise.all([own.getMetricsAsJSON(), ask<metric[]>({ what: 'metrics' }, [])]);
    return AggregatorRegistry.aggregate([parts[0], ...parts[1]]);
  };
  const text: MetricsText = {
    contentType: own.contentType,
    metrics: async () => (await aggregate()).metrics(),
  };
  const metricsServer: http.Server = await startMetricsServer(runtime.metricsListen, {
    registry: text,
    healthy: async () => {
      const up = await (await aggregate()).getSingleMetric('ampguard_backend_up')?.get();
      return (up?.values ?? []).some((v) => v.value === 1);
    },
    routes: operatorRoutes({
      enforcer,
      top: async (n) => mergeTop(await ask<TopTalker[]>({ what: 'top', n }, []), n),
      metricsJson: async () => (await aggregate()).getMetricsAsJSON(),
    }),
  });
  logStarted(log, runtime, enforcer, loaded, workerCount);

  return {
    enforcer,
    reload(next: Config): ReloadPlan {
      const r = reloadConfig(config, next);
      ({ config, settings } = r);
      log.level = config.log.level;
      broadcast({ t: 'reload', config });
      return r.plan;
    },
    async close(): Promise<void> {
      closing = true;
      await Promise.all(
        [...workers].map((w) => new Promise<void>((resolve) => {
          w.once('exit', () => resolve());
          w.disconnect();
          setTimeout(() => w.kill('SIGKILL'), 5000).unref();
        })),
      );
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      metricsServer.closeAllConnections();
      await enforcer.close();
    },
  };
}
