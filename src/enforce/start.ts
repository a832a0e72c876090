// The enforcer of a process that owns the block set: sink chosen per
// block.mode, kernel members loaded so a restart forgets nobody.
import type { Logger } from 'pino';
import type { PolicySettings, RuntimeConfig } from '../config/compile.js';
import { createExec } from './exec.js';
import { kernelSettings } from '../kernel/settings.js';
import { chooseSink } from './choose.js';
import { takeOverLeftovers } from './leftovers.js';
import { Enforcer } from './enforcer.js';
import { monotonicNow } from '../time/clock.js';

export async function startEnforcer(runtime: RuntimeConfig, settings: () => PolicySettings, log: Logger): Promise<{ enforcer: Enforcer; loaded: number }> {
  const config = runtime.source;
  const enforceLog = log.child({ module: 'enforce' });
  const k = kernelSettings(runtime);
  const exec = createExec();
  const sink = await chooseSink(config.block.mode, k, exec, enforceLog);
  // a restart with block.mode changed: the other mode's sets and rules go, their members come along
  const left = await takeOverLeftovers(sink, k, exec, enforceLog);
  for (const note of left.notes) enforceLog.warn({ mode: sink.mode }, note);
  const enforcer = new Enforcer(sink, config.block.max_elements, settings, enforceLog, monotonicNow);
  enforcer.reconciler.repairs.leftover += left.removed;
  const loaded = await enforcer.loadKernelMembers();
  enforcer.startReconciling();
  return { enforcer, loaded };
}
