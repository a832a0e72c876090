// The last block events, for the dashboard and GET /api/blocks `recent`: a
// bounded ring, newest first when read.

/**
 * Why a prefix is blocked, in the one vocabulary of the log (`prefix blocked`
 * reason), ampguard_escalations_total{reason}, /api/blocks, the dashboard and
 * `ampguard blocks show`: no_followup (judged on the ladder: answered with TC,
 * no TCP came back), over_budget (over its large-reply budget with the ladder
 * off), manual (`ampguard blocks add`, the API, a fleet verdict).
 */
export type BlockReason = 'no_followup' | 'over_budget' | 'manual';

export interface BlockEvent {
  readonly prefix: string;
  readonly address: string;
  readonly reason: BlockReason;
  /** what was blocked: the client's prefix, the aggregate network around it (the ladder's), or a network blocked by hand */
  readonly level: 'prefix' | 'aggregate' | 'network';
  /** the ladder's rung: 3, blocked (1 under budget and 2 answered with TC are in /api/top) */
  readonly rung: 3;
  /** block.mode off: would have been blocked, was not */
  readonly dryRun?: true;
  /** large-reply bytes (or replies) charged when it tripped; 0 for manual blocks */
  readonly charged: number;
  /** wall-clock ms */
  readonly at: number;
  readonly expiresAt: number;
}

/** recent block events kept */
export const RECENT_BLOCKS = 100;

export class RecentBlocks {
  private readonly events: BlockEvent[] = [];

  constructor(private readonly capacity = RECENT_BLOCKS) {}

  push(event: BlockEvent): void {
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.shift();
  }

  /** newest first */
  list(): BlockEvent[] {
    return [...this.events].reverse();
  }
}
