// The plain data a stage sees. Built by the listener once per packet.
import type { ParsedQuery } from '../dns/query.js';
import type { Family } from '../config/address.js';

export type Proto = 'udp' | 'tcp';

export interface QueryContext {
  /** the query as received (its ID may since have been rewritten for the backend) */
  readonly query: Buffer;
  readonly parsed: ParsedQuery;
  readonly clientAddress: string;
  readonly family: Family;
  readonly proto: Proto;
}
