// Plain numbers the packet path increments: a field bump costs nothing, while a
// prom-client label lookup per packet would. The registry reads them at scrape.
import type { DropReason, LocalAnswerReason, TruncateReason } from '../policy/verdict.js';
import type { UpstreamRejectReason } from '../dns/reply-check.js';
import type { Proto } from '../policy/context.js';
import type { EscalationKey, PolicyCounters } from '../policy/env.js';

export type TcpCloseReason = 'buffer_full' | 'read_timeout' | 'idle' | 'framing' | 'internal_error';
export type TcpUpstreamFailure = 'connect_timeout' | 'connect_error' | 'reset' | 'pool_full';
/** where a UDP socket error happened: a client-facing listen socket or a socket to a backend */
export type UdpIoSide = 'listen' | 'upstream';
/**
 * socket_error: an asynchronous error (an ICMP unreachable, forged or real) cleared
 * and read on; recv_error / send_error: a failing call; recv_truncated: a datagram
 * longer than its slot, dropped; send_dropped: the send queue was full.
 */
type UdpIoErrorReason = 'socket_error' | 'recv_error' | 'recv_truncated' | 'send_error' | 'send_dropped';
export type UdpIoErrorKey = `${UdpIoSide}:${UdpIoErrorReason}`;

export class Counters implements PolicyCounters {
  readonly queries: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responses: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly queryBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly responseBytes: Record<Proto, number> = { udp: 0, tcp: 0 };
  readonly truncated: Record<TruncateReason, number> = { any: 0, size: 0, budget: 0 };
  readonly dropped: Record<DropReason, number> = {
    malformed: 0, blocked: 0, rate: 0, backend_timeout: 0, overload: 0, bad_source: 0, internal_error: 0,
  };
  readonly upstreamRejected: Record<UpstreamRejectReason, number> = { short: 0, not_response: 0, unknown_id: 0, question_mismatch: 0 };
  readonly localAnswers: Record<LocalAnswerReason, number> = { notimp: 0 };
  largeResponses = 0;
  /** UDP queries sent to backends, and datagrams read from their sockets: /healthz's view of the upstream path */
  forwarded = 0;
  upstreamReplies = 0;
  /** block.mode off: ladder TC answers that were not sent (the full reply went out) */
  wouldTruncate = 0;
  /** TCP queries from prefixes on rung 2 of the ladder (docs/defence.md) */
  tcpFollowUps = 0;
  /** offenders made by the large-response stage, keyed "level:reason" (ampguard_escalations_total) */
  readonly escalations: Record<EscalationKey, number> = {
    'prefix:no_followup': 0, 'prefix:over_budget': 0, 'aggregate:no_followup': 0, 'aggregate:over_budget': 0,
  };
  /** UDP socket errors by side and reason, recovered from (ampguard_udp_io_errors_total) */
  readonly udpIoErrors: Record<UdpIoErrorKey, number> = {
    'listen:socket_error': 0, 'listen:recv_error': 0, 'listen:recv_truncated': 0, 'listen:send_error': 0, 'listen:send_dropped': 0,
    'upstream:socket_error': 0, 'upstream:recv_error': 0, 'upstream:recv_truncated': 0, 'upstream:send_error': 0, 'upstream:send_dropped': 0,
  };
  /** client TCP connections ampguard closed, by why (the caps and timeouts of docs/tcp.md) */
  readonly tcpClosed: Record<TcpCloseReason, number> = { buffer_full: 0, read_timeout: 0, idle: 0, framing: 0, internal_error: 0 };
  /** failures of TCP connections to backends, by kind; their queries get backend_timeout_action */
  readonly tcpUpstreamFailures: Record<TcpUpstreamFailure, number> = { connect_timeout: 0, connect_error: 0, reset: 0, pool_full: 0 };
}
