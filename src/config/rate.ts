// iptables hashlimit rate syntax, as operators already write it for
// `-m hashlimit --hashlimit-upto`: "50kb/min", "1mb/s", "1000/sec".
// As in libxt_hashlimit, kb and mb are powers of 1024 and a time unit may be
// any prefix of second|minute|hour|day.

type RateUnit = 'bytes' | 'packets';

export interface Rate {
  readonly unit: RateUnit;
  /** bytes (or replies) refilled per millisecond */
  readonly perMs: number;
}

const PERIOD_MS: ReadonlyArray<readonly [string, number]> = [
  ['second', 1_000],
  ['minute', 60_000],
  ['hour', 3_600_000],
  ['day', 86_400_000],
];

const BYTE_MULTIPLIER: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 * 1024, gb: 1024 ** 3 };

export function parseRate(text: string): Rate | null {
  const m = /^(\d+(?:\.\d+)?)(b|kb|mb|gb)?\/([a-z]+)$/i.exec(text.trim());
  if (!m) return null;
  const amount = Number(m[1]);
  const suffix = m[2]?.toLowerCase();
  const periodWord = (m[3] as string).toLowerCase();
  const period = PERIOD_MS.find(([word]) => word.startsWith(periodWord));
  if (!period || !(amount > 0) || !Number.isFinite(amount)) return null;
  if (suffix === undefined) return { unit: 'packets', perMs: amount / period[1] };
  const multiplier = BYTE_MULTIPLIER[suffix] as number;
  return { unit: 'bytes', perMs: (amount * multiplier) / period[1] };
}
