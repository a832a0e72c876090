// The cluster primary: forks the workers (which share the listen sockets) and
// hands each the configuration it runs now, owns the enforcer and the kernel
// set, relays budget charges between workers, fans blocks out to all of them,
// and serves metrics summed from the numeric snapshots they push (a scrape
// never waits on a worker). It serves no DNS itself. Dead workers are
// replaced with backoff; workers that keep dying end the service (respawn.ts).
// The workers themselves (fork, IPC, respawn, asks, stop) are a Workers object (workers.ts).
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import type { ReloadPlan } from '../config/reload.js';
import { LiveConfig } from '../operator/live-config.js';
import { LATENCY_BOUNDS, registerDataplaneMetrics, registerWorkerMetrics } from '../metrics/registry.js';
import { DataPathHealth, dataPathSample } from '../operator/health.js';
import { warnUdpIoFallback } from '../native/index.js';
import { mergeTop } from '../operator/view.js';
import { SnapshotSum } from '../metrics/snapshot.js';
import type { TopTalker } from '../policy/budgets.js';
import { startEnforcer } from '../enforce/start.js';
import { monotonicNow as clock } from '../time/clock.js';
import { readResolvConf, type Frontend } from '../main.js';
import { closeHttp, logStarted, startControlPlane, type ControlOptions } from '../operator/control-plane.js';
import { startFleet, type Fleet } from '../fleet/start.js';
import { Workers } from './workers.js';

/** how often the primary looks for workers that stopped reporting */
const WATCHDOG_MS = 500;

export async function startPrimary(runtime: RuntimeConfig, workerCount: number, log: Logger, control: ControlOptions): Promise<Frontend> {
  const live = new LiveConfig(runtime, log);
  // the text the backends were compiled from goes to every worker with the config
  const resolvConf = readResolvConf();
  const sums = new SnapshotSum(LATENCY_BOUNDS);
  // every worker's snapshot is its heartbeat; the data path's health is judged from them
  const health = new DataPathHealth();
  const { enforcer, loaded } = await startEnforcer(runtime, () => live.settings, log);
  /** the site's link (fleet.nats): the workers' charges go out, the peers' come in as debits (docs/fleet.md) */
  let fleet: Fleet | null = null;
  const workers = new Workers({
    log,
    routes: {
      config: () => ({ config: live.config, resolvConf }),
      blocks: () => enforcer.list().map((b) => ({ prefix: b.prefix, ttlMs: b.expiresInMs })),
      charges: (m) => fleet?.batch.add(m),
      offender: (o) => enforcer.onOffender(o, clock()),
      stats: (id, snap) => {
        sums.update(id, snap);
        health.beat(id, clock(), dataPathSample(snap.counters, snap.backends.some((b) => b.up)));
      },
      exited: (id) => {
        sums.retire(id);
        health.forget(id);
      },
    },
  });
  enforcer.onChange = (c) => workers.broadcast(c.kind === 'block' ? { t: 'block', prefix: c.prefix, ttlMs: c.ttlMs } : { t: 'unblock', prefix: c.prefix });
  await workers.start(workerCount);

  // A worker that stops reporting still holds its share of the clients: killed and replaced.
  const watchdog = setInterval(() => workers.killSilent(health.silent(clock())), WATCHDOG_MS);
  watchdog.unref();

  const registry = new Registry();
  registerDataplaneMetrics(registry, sums.sources());
  registerWorkerMetrics(registry, () => workers.restarts);
  try {
    fleet = startFleet({
      runtime, enforcer, settings: () => live.settings, keyFile: control.fleetKeyFile ?? '', registry, log, clock,
      deliver: (d) => workers.broadcast({ t: 'debits', d: d.d, a: d.a, f: d.f }),
    });
  } catch (err) {
    clearInterval(watchdog);
    workers.abort();
    throw err;
  }
  const metricsServer = await startControlPlane({
    runtime, enforcer, registry, control, log,
    health: () => health.verdict(clock(), workerCount),
    top: async (n) => mergeTop(await workers.ask<TopTalker[]>({ what: 'top', n }, []), n),
  });
  // the workers open the UDP sockets; the fallback to dgram is said once, here (docs/performance.md)
  if (live.config.udp_io === 'auto') warnUdpIoFallback(log);
  logStarted(log, runtime, enforcer, loaded, workerCount, control);

  return {
    enforcer,
    failed: workers.failed,
    reload(next: Config): ReloadPlan {
      const plan = live.reload(next, enforcer);
      workers.broadcast({ t: 'reload', config: live.config });
      return plan;
    },
    async close(): Promise<void> {
      workers.beginStop();
      clearInterval(watchdog);
      await fleet?.close();
      // stop taking work first: the HTTP listener and its connections, then the workers' DNS
      const http = closeHttp(metricsServer);
      await workers.stop();
      await http;
      await enforcer.close();
    },
  };
}
