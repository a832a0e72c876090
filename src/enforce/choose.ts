// block.mode -> a started sink. `auto` tries ipset and falls back to userspace
// with one warning; an explicit kernel mode that the kernel refuses also falls
// back (never a crash) but logs an error, since the operator asked for it.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Exec } from './exec.js';
import { IpsetSink } from './ipset.js';
import { NftablesSink } from './nftables.js';
import { processOnlySink, type BlockSink } from './sink.js';
import type { KernelSettings } from '../kernel/settings.js';

export function kernelSink(mode: 'ipset' | 'nftables', k: KernelSettings, exec: Exec): BlockSink {
  return mode === 'ipset' ? new IpsetSink(k, exec) : new NftablesSink(k, exec);
}

export async function chooseSink(mode: Config['block']['mode'], k: KernelSettings, exec: Exec, log: Logger): Promise<BlockSink> {
  if (mode === 'userspace' || mode === 'off') return processOnlySink(mode);
  const sink = kernelSink(mode === 'auto' ? 'ipset' : mode, k, exec);
  const started = await sink.start();
  if (started.ok) {
    // an earlier run's set with other parameters was rebuilt: say so, with how many members it kept
    for (const note of started.notes ?? []) log.warn({ mode: sink.mode }, note);
    return sink;
  }
  if (mode === 'auto') log.warn({ err: started.error }, 'kernel set not available, blocking in userspace (block.mode auto)');
  else log.error({ mode, err: started.error }, 'kernel enforcement could not start, blocking in userspace');
  return processOnlySink('userspace');
}
