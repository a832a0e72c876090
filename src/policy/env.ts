// What the policy stages share: the live thresholds (swapped by SIGHUP), the
// bounded tables they keep, and the counters they feed.
import type { PolicySettings } from '../config/compile.js';
import type { BudgetTable } from './budgets.js';
import type { BlockTable } from './block-table.js';
import type { Counters } from '../metrics/counters.js';
import type { RealClients } from './real-clients.js';

export interface PolicyEnv {
  settings: PolicySettings;
  readonly budgets: BudgetTable;
  readonly blocks: BlockTable;
  readonly counters: Counters;
  /** the live process's real clients, for the collateral figure (the replay has its own measure) */
  readonly realClients?: RealClients;
}
