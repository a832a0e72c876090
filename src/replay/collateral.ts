// The collateral of a configuration (docs/replay.md): the real clients it
// would have cost answers, next to what it left the attacker. A real client is
// a prefix that did what a spoofer cannot: it sent DNS over TCP (a handshake
// needs the address), or most of its replies were small answers (below
// policy.large_response.min_bytes; TC stand-ins and errors such as a loaded
// resolver's SERVFAIL not counted), which no one floods for. Every other prefix that got UDP replies is counted on the
// attacker's side: the bytes sent in its name and the bytes the policy would
// have delivered to it. Pure: a walk of the runner's bounded prefix table.

/** what collateral() reads of a prefix (runner.ts PrefixStat) */
export interface ClientStat {
  readonly queries: number;
  /** UDP query bytes from (or in the name of) the prefix */
  readonly bytesIn: number;
  /** UDP reply bytes the policy would have sent it */
  readonly bytesAfter: number;
  /** DNS messages it sent over TCP */
  readonly tcp: number;
  /** captured UDP replies to its queries */
  readonly replies: number;
  /** of those, answers (no TC, NOERROR or NXDOMAIN) below the large-response size */
  readonly small: number;
  /** its queries that would have had no answer: dropped (blocked), or their reply dropped (tripped a block) */
  readonly lost: number;
  readonly rung: number;
}

interface CollateralClient {
  prefix: string;
  queries: number;
  lost: number;
  tcp: number;
  small_answers: number;
  rung: number;
}

export interface Collateral {
  /** prefixes that sent TCP, or whose replies were mostly small answers */
  real_clients: number;
  /** of those, the ones that would have lost at least one answer */
  clients_hurt: number;
  /** the queries they would have lost */
  queries_lost: number;
  /** the most hurt first (at most `topN`) */
  hurt: CollateralClient[];
  /** every other prefix: the bytes sent in their name and what the policy would have delivered to them */
  attacker: { prefixes: number; bytes_sent: number; bytes_delivered: number; amplification: number };
}

export function isRealClient(p: ClientStat): boolean {
  // a share, not one answer: a flooded victim also gets the odd small answer (an NXDOMAIN, a short TXT)
  return p.tcp > 0 || (p.small > 0 && 2 * p.small >= p.replies);
}

export function collateral(prefixes: ReadonlyMap<string, ClientStat>, topN = 20): Collateral {
  let real = 0;
  let lost = 0;
  const hurt: CollateralClient[] = [];
  const attacker = { prefixes: 0, bytes_sent: 0, bytes_delivered: 0, amplification: 0 };
  for (const [prefix, p] of prefixes) {
    if (isRealClient(p)) {
      real++;
      if (p.lost > 0) {
        lost += p.lost;
        hurt.push({ prefix, queries: p.queries, lost: p.lost, tcp: p.tcp, small_answers: p.small, rung: p.rung });
      }
    } else if (p.queries > 0) {
      attacker.prefixes++;
      attacker.bytes_sent += p.bytesIn;
      attacker.bytes_delivered += p.bytesAfter;
    }
  }
  attacker.amplification = attacker.bytes_sent > 0 ? Math.round((attacker.bytes_delivered / attacker.bytes_sent) * 100) / 100 : 0;
  hurt.sort((a, b) => b.lost - a.lost || (a.prefix < b.prefix ? -1 : 1));
  return { real_clients: real, clients_hurt: hurt.length, queries_lost: lost, hurt: hurt.slice(0, topN), attacker };
}
