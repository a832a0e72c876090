// Backend selection, pure: weighted random over the healthy backends (dnsdist's
// wrandom). With none healthy, over all of them, as CoreDNS's forward does: a
// wrong health check must not turn into a total outage.

export interface Selectable {
  readonly weight: number;
  readonly up: boolean;
}

export function selectBackend<T extends Selectable>(backends: readonly T[], random: number): T | undefined {
  let total = 0;
  for (const b of backends) if (b.up) total += b.weight;
  const onlyUp = total > 0;
  if (!onlyUp) for (const b of backends) total += b.weight;
  let point = random * total;
  for (const b of backends) {
    if (onlyUp && !b.up) continue;
    point -= b.weight;
    if (point < 0) return b;
  }
  return backends[backends.length - 1];
}
