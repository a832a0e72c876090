// Plain numbers the packet path increments: a field bump costs nothing, while a
// prom-client label lookup per packet would. The registry reads them at scrape.
import type { DropReason, LocalAnswerReason, TruncateReason, UpstreamRejectReason } from '../pipeline/verdict.js';
import type { Proto } from '../pipeline/context.js';

export class Counters {
  readonly queries: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responses: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly queryBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responseBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly truncated: Record<TruncateReason, number> = { any: 0, size: 0 };
  readonly dropped: Record<DropReason, number> = {
    malformed: 0, blocked: 0, rate: 0, backend_timeout: 0, overload: 0, bad_source: 0, internal_error: 0,
  };
  readonly upstreamRejected: Record<UpstreamRejectReason, number> = { short: 0, not_response: 0, unknown_id: 0, question_mismatch: 0 };
  readonly localAnswers: Record<LocalAnswerReason, number> = { notimp: 0 };
  largeResponses = 0;
}
