// `ampguard run --config FILE`: runs until SIGTERM/SIGINT; SIGHUP re-reads the
// file and applies the reloadable keys (a bad file keeps the running config).
import cluster from 'node:cluster';
import { createLogger } from '../log/logger.js';
import { startFrontend } from '../main.js';
import { startPrimary } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import { loadConfig, formatIssues } from '../config/load.js';
import { CliError, readConfigFile, runtimeFromFile } from './common.js';

export async function runCommand(path: string): Promise<number> {
  const runtime = runtimeFromFile(path);
  const workers = runtime.workers;
  const log = createLogger(runtime.source.log.level);
  if (cluster.isWorker) {
    try {
      await runWorker(runtime, log.child({ worker: cluster.worker?.id }));
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'worker cannot start');
      process.exit(1);
    }
    return new Promise(() => undefined); // lives until the primary disconnects it
  }
  let frontend;
  try {
    frontend = workers > 1 ? await startPrimary(runtime, workers, log) : await startFrontend(runtime, log);
  } catch (err) {
    throw new CliError('E_START', `cannot start: ${(err as Error).message}`);
  }
  process.on('SIGHUP', () => {
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
  });
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'ampguard stopping');
      frontend.close().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
