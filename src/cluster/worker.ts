// A cluster worker: the whole data plane, with its budgets and block table kept
// in step with the other workers through the primary. It charges large replies
// locally (no IPC on the packet path), sends its charges in batches every
// SYNC_MS, and takes the other workers' charges as debits, so a client spread
// over N workers is held to one budget, give or take what the others admitted
// within one sync interval. A local trip blocks here at once and tells the
// primary, which owns the kernel set and tells every worker. Its configuration
// comes from the primary (configFromPrimary), never from the file on disk, and
// its metrics go to the primary as a numeric snapshot every SNAPSHOT_MS.
import type { Logger } from 'pino';
import { compileConfig, compilePolicy, type RuntimeConfig } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import { formatIssues } from '../config/load.js';
import { BudgetTable } from '../policy/budgets.js';
import { BlockTable } from '../policy/block-table.js';
import { offenderBlockable } from '../policy/block-target.js';
import { hookLatency } from '../metrics/registry.js';
import { SNAPSHOT_MS, takeSnapshot } from '../metrics/snapshot.js';
import { startDataplane } from '../dataplane.js';
import { monotonicNow as clock } from '../time/clock.js';
import type { Offender } from '../policy/verdict.js';
import type { ToPrimary, ToWorker } from './messages.js';

const SYNC_MS = 5;
/** follow-up candidates sent per sync at most (a TCP flood cannot make the IPC messages grow without bound) */
const MAX_FOLLOWUPS_PER_SYNC = 4096;

function send(message: ToPrimary): void {
  process.send?.(message);
}

/** how long a worker waits for its configuration before it gives up (the primary then respawns it, with backoff) */
const CONFIG_TIMEOUT_MS = 10_000;

/** Asks the primary for the configuration it runs now and compiles it. */
export function configFromPrimary(): Promise<RuntimeConfig> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('no configuration from the primary'));
    }, CONFIG_TIMEOUT_MS);
    const onMessage = (m: ToWorker): void => {
      if (m.t !== 'config') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      const compiled = compileConfig(m.config as Config, m.resolvConf);
      if (compiled.ok) resolve(compiled.runtime);
      else reject(new Error(`the primary's configuration does not compile: ${formatIssues(compiled.issues)}`));
    };
    process.on('message', onMessage);
    send({ t: 'hello' });
  });
}

export async function runWorker(runtime: RuntimeConfig, log: Logger): Promise<void> {
  const config = runtime.source;
  let settings = runtime.policy;
  const budgets = new BudgetTable(config.policy.large_response.max_tracked);
  const blocks = new BlockTable(config.block.max_elements);
  const enforcing = config.block.mode !== 'off';
  // mode off: the primary logs each prefix once per timeout; tell it once, not per reply
  const reported = new BlockTable(config.block.max_elements);

  // charges at both budget levels and the ladder's TCP follow-ups, batched every SYNC_MS
  let charges = new Map<string, number>();
  let aggregateCharges = new Map<string, number>();
  // follow-up candidates this worker could not match: [key, question hash, level], bounded per batch
  let followUps: [string, number, 0 | 1][] = [];
  budgets.onCharge = (key, cost, level) => {
    const m = level === 'prefix' ? charges : aggregateCharges;
    m.set(key, (m.get(key) ?? 0) + cost);
  };
  budgets.onFollowUp = (key, question, level) => {
    if (followUps.length < MAX_FOLLOWUPS_PER_SYNC) followUps.push([key, question, level === 'prefix' ? 0 : 1]);
  };
  const syncTimer = setInterval(() => {
    if (charges.size === 0 && aggregateCharges.size === 0 && followUps.length === 0) return;
    send({ t: 'charges', d: [...charges], a: [...aggregateCharges], f: followUps });
    charges = new Map();
    aggregateCharges = new Map();
    followUps = [];
  }, SYNC_MS);

  const onOffender = (o: Offender, now: number): boolean => {
    if (!reported.isBlocked(o.prefix, now)) {
      reported.add(o.prefix, now + settings.blockTimeoutMs);
      send({ t: 'offender', o });
    }
    if (!enforcing) return false;
    // the primary refuses a block covering an allowlisted address (docs/enforcement.md): so does the worker
    if (offenderBlockable(o, settings)) blocks.add(o.prefix, now + settings.blockTimeoutMs);
    return true;
  };
  const dataplane = await startDataplane(runtime, { budgets, blocks, onOffender }, log);
  const latency = hookLatency(dataplane.sources.backends);
  const report = (): void => send({ t: 'stats', s: takeSnapshot(dataplane.sources, latency) });
  const snapshotTimer = setInterval(report, SNAPSHOT_MS);

  process.on('message', (m: ToWorker) => {
    const now = clock();
    switch (m.t) {
      case 'debits':
        for (const [prefix, cost] of m.d) budgets.debit(prefix, cost, settings, now);
        for (const [key, cost] of m.a ?? []) budgets.debit(key, cost, settings, now, 'aggregate');
        // another worker's answered TCP queries: a follow-up here when this worker truncated the question
        for (const [key, question, level] of m.f ?? []) {
          if (budgets.followUp(level === 0 ? 'prefix' : 'aggregate', key, question, settings, now, true)) dataplane.env.counters.tcpFollowUps++;
        }
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
        send({ t: 'answer', id: m.id, data: budgets.top(Math.min(100, m.n), now) });
        break;
    }
  });
  process.on('disconnect', () => {
    clearInterval(syncTimer);
    clearInterval(snapshotTimer);
    dataplane.close().finally(() => process.exit(0));
  });
  // the primary handles signals (a reload reaches workers as a message); a worker
  // only leaves when it is disconnected, whatever `pkill` hits the whole group
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  send({ t: 'ready' });
  report();
}
