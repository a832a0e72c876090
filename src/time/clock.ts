// The one monotonic clock: milliseconds from an arbitrary origin, never set
// back. Budgets, block expiry, health and timeouts take `now` from it (or a
// fake one in tests); wall-clock time (Date.now) only for what leaves the
// process (block expiry shown to operators, seals).

/** a source of monotonic milliseconds, injected where time matters */
export type Clock = () => number;

export const monotonicNow: Clock = () => performance.now();
