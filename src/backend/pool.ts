// Packet-path step 4 — the backends: their health, their outstanding-query tables and
// the choice among them. Reads backends, health_check.fall/rise, max_in_flight.
// Feeds ampguard_backend_up (via the registry). No I/O here (CONTRIBUTING.md rule 10).
import type { BackendSpec } from '../config/compile.js';
import { INITIAL_HEALTH, recordCheck, type HealthState } from './health.js';
import { InFlightTable } from './inflight.js';
import { selectBackend, type Selectable } from './select.js';

export interface UdpSender {
  /** sends a datagram to the backend, prefixed by `header` when not null */
  send(query: Buffer, header: Buffer | null): void;
}

export class Backend<P> implements Selectable {
  health: HealthState = INITIAL_HEALTH;
  readonly inflight: InFlightTable<P>;
  sender: UdpSender | null = null;
  /** set by the metrics registry to its histogram child for this backend */
  observeLatency: (seconds: number) => void = () => undefined;

  constructor(readonly spec: BackendSpec, maxInFlight: number) {
    this.inflight = new InFlightTable<P>(maxInFlight);
  }

  get name(): string {
    return this.spec.name;
  }
  get weight(): number {
    return this.spec.weight;
  }
  get up(): boolean {
    return this.health.up;
  }

  /** Applies one health-check result; returns true when up/down changed. */
  recordCheck(ok: boolean, fall: number, rise: number): boolean {
    const before = this.health.up;
    this.health = recordCheck(this.health, ok, fall, rise);
    return before !== this.health.up;
  }
}

export class BackendPool<P> {
  readonly backends: readonly Backend<P>[];

  constructor(specs: readonly BackendSpec[], maxInFlight: number, private readonly random: () => number = Math.random) {
    this.backends = specs.map((s) => new Backend<P>(s, maxInFlight));
  }

  select(): Backend<P> {
    return selectBackend(this.backends, this.random()) as Backend<P>;
  }

  get anyUp(): boolean {
    return this.backends.some((b) => b.up);
  }
}
