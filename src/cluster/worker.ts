// A cluster worker: the whole data plane, with its budgets and block table kept
// in step with the other workers through the primary. It charges large replies
// locally (no IPC on the packet path), sends its charges in batches every
// SYNC_MS, and takes the other workers' charges as debits, so a client spread
// over N workers is held to one budget, give or take what the others admitted
// within one sync interval. A local trip blocks here at once and tells the
// primary, which owns the kernel set and tells every worker.
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { compilePolicy, type RuntimeConfig } from '../config/compile.js';
import { BudgetTable } from '../policy/budgets.js';
import { BlockTable } from '../policy/block-table.js';
import { registerDataplaneMetrics } from '../metrics/registry.js';
import { clock, startDataplane } from '../dataplane.js';
import type { Offender } from '../pipeline/verdict.js';
import type { ToPrimary, ToWorker } from './messages.js';

export const SYNC_MS = 5;

function send(message: ToPrimary): void {
  process.send?.(message);
}

export async function runWorker(runtime: RuntimeConfig, log: Logger): Promise<void> {
  const config = runtime.source;
  let settings = runtime.policy;
  const budgets = new BudgetTable(config.policy.large_response.max_tracked);
  const blocks = new BlockTable(config.block.max_elements);
  const enforcing = config.block.mode !== 'off';
  // mode off: the primary logs each prefix once per timeout; tell it once, not per reply
  const reported = new BlockTable(config.block.max_elements);

  let charges = new Map<string, number>();
  budgets.onCharge = (prefix, cost) => charges.set(prefix, (charges.get(prefix) ?? 0) + cost);
  const syncTimer = setInterval(() => {
    if (charges.size === 0) return;
    send({ t: 'charges', d: [...charges] });
    charges = new Map();
  }, SYNC_MS);

  const onOffender = (o: Offender, now: number): boolean => {
    if (!reported.isBlocked(o.prefix, now)) {
      reported.add(o.prefix, now + settings.blockTimeoutMs);
      send({ t: 'offender', o });
    }
    if (!enforcing) return false;
    blocks.add(o.prefix, now + settings.blockTimeoutMs);
    return true;
  };
  const dataplane = await startDataplane(runtime, { budgets, blocks, onOffender }, log);
  const registry = new Registry();
  registerDataplaneMetrics(registry, dataplane.sources);

  process.on('message', (m: ToWorker) => {
    const now = clock();
    switch (m.t) {
      case 'debits':
        for (const [prefix, cost] of m.d) budgets.debit(prefix, cost, settings, now);
        break;
      case 'block':
        blocks.add(m.prefix, now + m.ttlMs);
        break;
      case 'unblock':
        blocks.remove(m.prefix);
        reported.remove(m.prefix);
        break;
      case 'reload':
        settings = compilePolicy(m.config);
        dataplane.applySettings(settings);
        log.level = m.config.log.level;
        break;
      case 'ask':
        if (m.what === 'top') send({ t: 'answer', id: m.id, data: budgets.top(m.n, now) });
        else registry.getMetricsAsJSON().then((data) => send({ t: 'answer', id: m.id, data }), () => send({ t: 'answer', id: m.id, data: [] }));
        break;
    }
  });
  process.on('disconnect', () => {
    clearInterval(syncTimer);
    dataplane.close().finally(() => process.exit(0));
  });
  // the primary handles signals (a reload reaches workers as a message); a worker
  // only leaves when it is disconnected, whatever `pkill` hits the whole group
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  send({ t: 'ready' });
}
