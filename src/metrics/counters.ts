// Plain numbers the packet path increments: a field bump costs nothing, while a
// prom-client label lookup per packet would. The registry reads them at scrape.
import type { DropReason, TruncateReason } from '../pipeline/verdict.js';
import type { Proto } from '../pipeline/context.js';

export class Counters {
  readonly queries: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responses: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly queryBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responseBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly truncated: Record<TruncateReason, number> = { any: 0, size: 0 };
  readonly dropped: Record<DropReason, number> = { malformed: 0, blocked: 0, rate: 0, backend_timeout: 0, overload: 0 };
  largeResponses = 0;
}
