// `ampguard run --config FILE`: runs until SIGTERM/SIGINT; SIGHUP re-reads the
// file and applies the reloadable keys (a bad file keeps the running config).
import { createLogger } from '../log/logger.js';
import { startFrontend } from '../main.js';
import { loadConfig, formatIssues } from '../config/load.js';
import { CliError, readConfigFile, runtimeFromFile } from './common.js';

export async function runCommand(path: string): Promise<number> {
  const runtime = runtimeFromFile(path);
  const log = createLogger(runtime.source.log.level);
  let frontend;
  try {
    frontend = await startFrontend(runtime, log);
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
