// HTTP requests the metrics listener refused or failed, by reason. One listener
// per process (the one that owns the block set), so a module-level tally; the
// registry mirrors it as ampguard_http_errors_total. Not ampguard_dropped_total:
// that one counts DNS queries and replies, summed over the workers.
type HttpErrorReason = 'bad_request' | 'internal_error';

export const httpErrors: Record<HttpErrorReason, number> = { bad_request: 0, internal_error: 0 };
