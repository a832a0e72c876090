// The health state machine of one backend, pure (dnsdist: maxCheckFailures and
// rise): `fall` failed checks in a row take it down, `rise` good ones bring it
// back. Backends start up so traffic flows before the first check returns.

export interface HealthState {
  readonly up: boolean;
  readonly failures: number;
  readonly successes: number;
}

export const INITIAL_HEALTH: HealthState = { up: true, failures: 0, successes: 0 };

export function recordCheck(state: HealthState, ok: boolean, fall: number, rise: number): HealthState {
  if (ok) {
    const successes = state.successes + 1;
    return { up: state.up || successes >= rise, failures: 0, successes };
  }
  const failures = state.failures + 1;
  return { up: state.up && failures < fall, failures, successes: 0 };
}
