// The last block events, for the dashboard and GET /api/blocks `recent`: a
// bounded ring, newest first when read.

export interface BlockEvent {
  readonly prefix: string;
  readonly address: string;
  /** rate: over its large-response budget; manual: `ampguard blocks add`; off: would have been blocked */
  readonly reason: 'rate' | 'manual' | 'off';
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
