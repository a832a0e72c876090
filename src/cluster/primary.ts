// The cluster primary: forks the workers (which share the listen sockets) and
// hands each the configuration it runs now, owns the enforcer and the kernel
// set, relays budget charges between workers, fans blocks out to all of them,
// and serves metrics summed from the numeric snapshots they push (a scrape
// never waits on a worker). It serves no DNS itself. Dead workers are
// replaced with backoff; workers that keep dying end the service (respawn.ts).
import cluster, { type Worker } from 'node:cluster';
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import { reloadConfig, type ReloadPlan } from '../config/reload.js';
import { LATENCY_BOUNDS, registerDataplaneMetrics, registerWorkerMetrics, type WorkerRestartReason } from '../metrics/registry.js';
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
import { RespawnPolicy } from './respawn.js';
import type { ToPrimary, ToWorker } from './messages.js';

const ASK_TIMEOUT_MS = 2000;
/** how often the primary looks for workers that stopped reporting */
const WATCHDOG_MS = 500;
/** a worker that has not left this long after being disconnected at stop is killed */
const STOP_KILL_MS = 1000;

export async function startPrimary(runtime: RuntimeConfig, workerCount: number, log: Logger, control: ControlOptions): Promise<Frontend> {
  let config = runtime.source;
  let settings = runtime.policy;
  // the text the backends were compiled from goes to every worker with the config
  const resolvConf = readResolvConf();
  let closing = false;
  let started = false;
  let fail: (reason: string) => void = () => undefined;
  const failed = new Promise<string>((resolve) => (fail = resolve));
  const respawn = new RespawnPolicy();
  const sums = new SnapshotSum(LATENCY_BOUNDS);
  // every worker's snapshot is its heartbeat; the data path's health is judged from them
  const health = new DataPathHealth();
  const restarts: Record<WorkerRestartReason, number> = { crash: 0, hung: 0 };
  /** workers killed for hanging, whose exit is not a crash */
  const killedHung = new Set<number>();
  const { enforcer, loaded } = await startEnforcer(runtime, () => settings, log);
  const workers = new Set<Worker>();
  const broadcast = (m: ToWorker, except?: Worker): void => {
    for (const w of workers) if (w !== except && w.isConnected()) w.send(m);
  };
  enforcer.onChange = (c) => broadcast(c.kind === 'block' ? { t: 'block', prefix: c.prefix, ttlMs: c.ttlMs } : { t: 'unblock', prefix: c.prefix });

  /** the site's link (fleet.nats): the workers' charges go out, the peers' come in as debits (docs/fleet.md) */
  let fleet: Fleet | null = null;
  let nextAskId = 0;
  const answers = new Map<number, (data: unknown) => void>();

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      workers.add(w);
      let failure: string | undefined;
      // sending to a worker that just died fails with EPIPE; its 'exit' is what counts
      w.on('error', () => undefined);
      w.on('message', (m: ToPrimary) => {
        switch (m.t) {
          case 'failed':
            // reject now: the exit may be seen before this message
            failure = m.err;
            if (!started) reject(new Error(m.err));
            break;
          case 'hello':
            w.send({ t: 'config', config, resolvConf } satisfies ToWorker);
            break;
          case 'ready':
            for (const b of enforcer.list()) w.send({ t: 'block', prefix: b.prefix, ttlMs: b.expiresInMs } satisfies ToWorker);
            if (started) log.info({ worker: w.id, pid: w.process.pid }, 'replacement worker ready');
            resolve();
            break;
          case 'charges':
            broadcast({ t: 'debits', d: m.d, a: m.a, f: m.f }, w);
            fleet?.batch.add(m);
            break;
          case 'offender':
            enforcer.onOffender(m.o, clock());
            break;
          case 'stats':
            sums.update(w.id, m.s);
            health.beat(w.id, clock(), dataPathSample(m.s.counters, m.s.backends.some((b) => b.up)));
            break;
          case 'answer':
            answers.get(m.id)?.(m.data);
            break;
        }
      });
      w.on('exit', (code, signal) => {
        workers.delete(w);
        sums.retire(w.id);
        health.forget(w.id);
        const hung = killedHung.delete(w.id);
        if (closing) return;
        // A worker that cannot start (a port in use, say) fails the start: respawning it would loop.
        if (!started) return reject(new Error(failure ?? `a worker exited before it was ready (${code ?? signal}); see its log line above`));
        const decision = respawn.onCrash(Date.now());
        if ('giveUp' in decision) {
          log.fatal({ worker: w.id, code, signal, reason: decision.giveUp }, 'workers keep dying, ampguard gives up');
          fail(decision.giveUp);
          return;
        }
        if (!hung) restarts.crash++;
        log.error({ worker: w.id, code, signal, respawn_in_ms: decision.respawnInMs }, hung ? 'hung worker killed, starting another' : 'worker died, starting another');
        setTimeout(() => {
          if (!closing) fork().catch((err: Error) => log.error({ err: err.message }, 'worker restart failed'));
        }, decision.respawnInMs);
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

  // A worker that stops reporting (SIGSTOP, a blocked event loop) still holds its
  // share of the SO_REUSEPORT clients: it is killed, which hands them to the
  // others at once, and replaced (docs/operations.md, "Health").
  const watchdog = setInterval(() => {
    for (const id of health.silent(clock())) {
      const w = [...workers].find((x) => x.id === id);
      if (!w || killedHung.has(id) || closing) continue;
      killedHung.add(id);
      restarts.hung++;
      log.error({ worker: id, pid: w.process.pid }, 'worker stopped reporting: killing and replacing it');
      w.process.kill('SIGKILL');
    }
  }, WATCHDOG_MS);
  watchdog.unref();

  const registry = new Registry();
  registerDataplaneMetrics(registry, sums.sources());
  registerWorkerMetrics(registry, () => restarts);
  try {
    fleet = startFleet({
      runtime, enforcer, settings: () => settings, keyFile: control.fleetKeyFile ?? '', registry, log, clock,
      deliver: (d) => broadcast({ t: 'debits', d: d.d, a: d.a, f: d.f }),
    });
  } catch (err) {
    closing = true;
    for (const w of workers) w.kill();
    throw err;
  }
  /** asks every worker; one that does not answer in time counts as an empty answer */
  const ask = <T>(question: { what: 'top'; n: number }, empty: T): Promise<T[]> =>
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
            if (w.isConnected()) w.send({ t: 'ask', id, ...question } satisfies ToWorker);
          }),
      ),
    );
  const metricsServer = await startControlPlane({
    runtime, enforcer, registry, control, log,
    health: () => health.verdict(clock(), workerCount),
    top: async (n) => mergeTop(await ask<TopTalker[]>({ what: 'top', n }, []), n),
  });
  // the workers open the UDP sockets; the fallback to dgram is said once, here (docs/performance.md)
  if (config.udp_io === 'auto') warnUdpIoFallback(log);
  logStarted(log, runtime, enforcer, loaded, workerCount, control);

  return {
    enforcer,
    failed,
    reload(next: Config): ReloadPlan {
      const r = reloadConfig(config, next);
      const networksOff = settings.aggregate.enabled && !r.settings.aggregate.enabled;
      ({ config, settings } = r);
      // aggregates turned off: no network block may outlive them (docs/defence.md)
      if (networksOff) void enforcer.liftNetworks().catch((err: Error) => log.error({ err: err.message }, 'lifting network blocks failed'));
      log.level = config.log.level;
      broadcast({ t: 'reload', config });
      return r.plan;
    },
    async close(): Promise<void> {
      closing = true;
      clearInterval(watchdog);
      await fleet?.close();
      // stop taking work first: the HTTP listener and its connections, then the workers' DNS
      const http = closeHttp(metricsServer);
      await Promise.all(
        [...workers].map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              const kill = setTimeout(() => w.kill('SIGKILL'), STOP_KILL_MS);
              kill.unref();
              if (w.isConnected()) w.disconnect();
              else w.kill('SIGKILL');
            }),
        ),
      );
      await http;
      await enforcer.close();
    },
  };
}
