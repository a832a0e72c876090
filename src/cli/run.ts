// `ampguard run --config FILE`: runs until SIGTERM/SIGINT; SIGHUP re-reads the
// file and applies the reloadable keys (a bad file keeps the running config).
// Signals are taken before anything else (signals.ts); a stop closes every
// listener and its connections and leaves within STOP_DEADLINE_MS whatever a
// client does. A cluster worker reads no file: its configuration comes from
// the primary.
import type { ToPrimary } from '../cluster/messages.js';
import cluster from 'node:cluster';
import { createLogger } from '../log/logger.js';
import { startFrontend, type Frontend } from '../main.js';
import { startPrimary } from '../cluster/primary.js';
import { configFromPrimary, runWorker } from '../cluster/worker.js';
import { loadConfig, formatIssues } from '../config/load.js';
import { tokenPath } from '../operator/token.js';
import { CliError, readConfigFile, runtimeFromFile } from './common.js';
import { attachSignals } from './signals.js';
import { notifySystemd } from './readiness.js';
import { udpAddressesInUse } from '../listener/exclusive.js';

/** what a stop may take before the process leaves anyway (systemd's stop, an operator's ^C) */
const STOP_DEADLINE_MS = 1500;

async function runAsWorker(): Promise<number> {
  // the primary handles signals (a reload reaches workers as a message); a worker
  // only leaves when it is disconnected, whatever `pkill` hits the whole group
  attachSignals({ reload: () => undefined, stop: () => undefined });
  // a message to a primary that already left (it gave up on another worker's start
  // error) fails with EPIPE: the disconnect that follows ends this worker, not a throw
  cluster.worker?.on('error', () => undefined);
  const early = createLogger('info').child({ worker: cluster.worker?.id });
  let runtime;
  try {
    runtime = await configFromPrimary();
  } catch (err) {
    early.fatal({ err: (err as Error).message }, 'worker cannot start');
    process.exit(1);
  }
  const log = createLogger(runtime.source.log.level).child({ worker: cluster.worker?.id });
  try {
    await runWorker(runtime, log);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'worker cannot start');
    // the primary's start error says why, not just that a worker left
    if (process.send) process.send({ t: 'failed', err: (err as Error).message } satisfies ToPrimary, () => process.exit(1));
    else process.exit(1);
  }
  return new Promise(() => undefined); // lives until the primary disconnects it
}

function reloadFrom(path: string, frontend: Frontend, log: ReturnType<typeof createLogger>): void {
  let text: string;
  try {
    text = readConfigFile(path);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'config reload failed, keeping the running config');
    return;
  }
  const loaded = loadConfig(text);
  if (!loaded.ok) {
    log.error({ problems: formatIssues(loaded.issues) }, 'config reload failed, keeping the running config');
    return;
  }
  const plan = frontend.reload(loaded.config);
  log.info({ applied: plan.applied, need_restart: plan.needRestart }, 'config reloaded');
}

export async function runCommand(path: string): Promise<number> {
  if (cluster.isWorker) return runAsWorker();
  const runtime = runtimeFromFile(path);
  const workers = runtime.workers;
  const log = createLogger(runtime.source.log.level);
  const keyFile = runtime.source.fleet.key_file;
  const control = { tokenFile: tokenPath(path, runtime.source.metrics.token_file), fleetKeyFile: keyFile ? tokenPath(path, keyFile) : '' };
  // a second instance (or anything else) on a listen address would silently get a share of the clients
  const inUse = await udpAddressesInUse(runtime.listenUdp);
  if (inUse.length > 0) throw new CliError('E_START', `cannot start: udp ${inUse.join(', ')} already served by another process (another ampguard?); SO_REUSEPORT would split the clients with it`);
  let frontend: Frontend;
  try {
    frontend = workers > 1 ? await startPrimary(runtime, workers, log, control) : await startFrontend(runtime, log, control);
  } catch (err) {
    throw new CliError('E_START', `cannot start: ${(err as Error).message}`);
  }
  let stopping = false;
  const leave = (code: number, reason: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'ampguard stopping');
    notifySystemd('STOPPING=1', log);
    const deadline = setTimeout(() => {
      log.warn({ deadline_ms: STOP_DEADLINE_MS }, 'stop took too long, leaving anyway');
      process.exit(code);
    }, STOP_DEADLINE_MS);
    frontend.close().then(
      () => {
        clearTimeout(deadline);
        log.info('ampguard stopped');
        process.exit(code);
      },
      (err: Error) => {
        log.error({ err: err.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  void frontend.failed?.then((reason) => {
    process.stderr.write(`ampguard: E_WORKERS: ${reason}; giving up\n`);
    leave(1, reason);
  });
  attachSignals({
    reload: () => {
      if (!stopping) reloadFrom(path, frontend, log);
    },
    stop: (signal) => leave(0, signal),
  });
  // only now: systemd queues a reload until READY=1, and the handlers above can take one
  notifySystemd('READY=1', log);
  return new Promise(() => undefined); // leaves through process.exit in leave()
}
