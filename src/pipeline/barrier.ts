// The fault barrier of the packet path: every unit of work (a datagram, an
// upstream reply, one expired query of the sweep) runs inside one try/catch
// whose catch lands here. An error nobody foresaw drops that one unit, is
// counted as ampguard_dropped_total{reason="internal_error"} and logged at most
// once a second, and never unwinds into the event loop, where it would end the
// process (and, in cluster mode, a respawn loop). See docs/hostile-input.md.
import type { Counters } from '../metrics/counters.js';
import { OncePerSecond, type ErrorSink } from '../log/once-per-second.js';

/** the kinds of unit of work a fault can drop: a closed set, logged as `unit` */
type FaultUnit = 'udp_query' | 'upstream_reply' | 'sweep' | 'tcp_query' | 'tcp_reply' | 'health_check' | 'ladder_judging';

export class FaultBarrier {
  private readonly log: OncePerSecond;

  constructor(private readonly counters: Counters, sink: ErrorSink, clock?: () => number) {
    this.log = new OncePerSecond(sink, 'internal error: unit of work dropped', clock);
  }

  fault(unit: FaultUnit, err: unknown): void {
    this.counters.dropped.internal_error++;
    this.log.report(unit, err);
  }
}
