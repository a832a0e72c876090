// What the policy stages share: the live thresholds (swapped by SIGHUP), the
// bounded tables they keep, and the counters they feed.
import type { PolicySettings } from '../config/compile.js';
import type { BudgetTable } from './budgets.js';
import type { BlockTable } from './block-table.js';
import type { RealClients } from './real-clients.js';

/** an escalation's level and cause (ampguard_escalations_total) */
export type EscalationKey = `${'prefix' | 'aggregate'}:${'no_followup' | 'over_budget'}`;

/** The counters the policy stages bump; metrics/counters.ts's Counters has them among the rest. */
export interface PolicyCounters {
  largeResponses: number;
  wouldTruncate: number;
  tcpFollowUps: number;
  readonly escalations: Record<EscalationKey, number>;
}

/** `C`: the counters as the caller holds them (the pipeline's are all of Counters). */
export interface PolicyEnv<C extends PolicyCounters = PolicyCounters> {
  settings: PolicySettings;
  readonly budgets: BudgetTable;
  readonly blocks: BlockTable;
  readonly counters: C;
  /** the live process's real clients, for the collateral figure (the replay has its own measure) */
  readonly realClients?: RealClients;
}
