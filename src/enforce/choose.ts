// block.mode -> a started sink. `auto` tries ipset and falls back to userspace
// with one warning (ampguard_enforcement_mode says which it took); an explicit
// kernel mode that the kernel refuses is a start-up error naming what it lacks,
// since the operator asked for it (SPEC: "a startup error").
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
  if (mode !== 'auto') throw new KernelModeError(mode, started.error ?? 'the kernel refused');
  log.warn({ err: started.error }, 'kernel set not available, blocking in userspace (block.mode auto)');
  return processOnlySink('userspace');
}

/** block.mode ipset|nftables asked for, and the kernel set could not be made: ampguard does not start. */
class KernelModeError extends Error {
  constructor(readonly mode: 'ipset' | 'nftables', cause: string) {
    const needs = mode === 'ipset'
      ? 'root or CAP_NET_ADMIN (and CAP_NET_RAW for iptables\' set match), and the ipset and iptables commands'
      : 'root or CAP_NET_ADMIN, and the nft command';
    super(`block.mode ${mode} cannot start: ${cause.split('\n')[0]}; it needs ${needs} (the shipped unit grants the capabilities); or set block.mode: auto (falls back to userspace) or userspace`);
  }
}
