// What every command shares: reading and checking the config file, and the
// control-plane error type with stable codes (CONTRIBUTING.md rule 6).
import { readFileSync } from 'node:fs';
import { loadConfig, formatIssues, type ConfigIssue } from '../config/load.js';
import { compileConfig, type RuntimeConfig } from '../config/compile.js';
import { readResolvConf } from '../main.js';
import { forwardLoops } from '../config/sanity.js';
import type { ErrorCode } from './error-codes.js';

/** the codes and what each means: error-codes.ts */
type CliErrorCode = ErrorCode;

export class CliError extends Error {
  constructor(readonly code: CliErrorCode, message: string, readonly exitCode = 1) {
    super(message);
  }
}

export function readConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('E_CONFIG_READ', `cannot read config ${path}: ${(err as Error).message}`);
  }
}

export function configIssues(text: string): { runtime: RuntimeConfig | null; issues: ConfigIssue[] } {
  const loaded = loadConfig(text);
  if (!loaded.ok) return { runtime: null, issues: loaded.issues };
  const compiled = compileConfig(loaded.config, readResolvConf());
  if (!compiled.ok) return { runtime: null, issues: compiled.issues };
  const loops = forwardLoops(compiled.runtime);
  return loops.length > 0 ? { runtime: null, issues: loops } : { runtime: compiled.runtime, issues: [] };
}

/** The runtime config from a file, or a CliError naming every problem by key path. */
export function runtimeFromFile(path: string): RuntimeConfig {
  const { runtime, issues } = configIssues(readConfigFile(path));
  if (!runtime) throw new CliError('E_CONFIG', `invalid config ${path}:\n${formatIssues(issues)}`);
  return runtime;
}
