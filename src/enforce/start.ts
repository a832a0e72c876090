// The enforcer of a process that owns the block set: sink chosen per
// block.mode, kernel members loaded so a restart forgets nobody.
import type { Logger } from 'pino';
import type { PolicySettings, RuntimeConfig } from '../config/compile.js';
import { createExec } from './exec.js';
import { kernelSettings } from '../kernel/settings.js';
import { chooseSink } from './choose.js';
import { Enforcer } from './enforcer.js';
import { performance } from 'node:perf_hooks';

export async function startEnforcer(runtime: RuntimeConfig, settings: () => PolicySettings, log: Logger): Promise<{ enforcer: Enforcer; loaded: number }> {
  const config = runtime.source;
  const enforceLog = log.child({ module: 'enforce' });
  const k = kernelSettings(runtime);
  const sink = await chooseSink(config.block.mode, k, createExec(), enforceLog);
  const enforcer = new Enforcer(sink, config.block.max_elements, settings, enforceLog, () => performance.now());
  const loaded = await enforcer.loadKernelMembers();
  return { enforcer, loaded };
}
