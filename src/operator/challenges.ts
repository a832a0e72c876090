// The server's outstanding nonces (proof.ts): each good for one request within
// CHALLENGE_TTL_MS, at most MAX_OUTSTANDING at once (the oldest is forgotten
// first), so a local user asking for nonces in a loop costs a bounded table.
export const CHALLENGE_TTL_MS = 30_000;
const MAX_OUTSTANDING = 1024;

export class Challenges {
  private readonly issued = new Map<string, number>();

  constructor(private readonly ttlMs = CHALLENGE_TTL_MS, private readonly max = MAX_OUTSTANDING) {}

  /** Remembers a nonce handed out at `now`. */
  issue(nonce: string, now: number): void {
    this.expire(now);
    while (this.issued.size >= this.max) {
      const oldest = this.issued.keys().next().value as string;
      this.issued.delete(oldest);
    }
    this.issued.set(nonce, now + this.ttlMs);
  }

  /** True once for a nonce issued and not yet expired; it is forgotten either way (no replay). */
  take(nonce: string, now: number): boolean {
    const until = this.issued.get(nonce);
    this.issued.delete(nonce);
    return until !== undefined && now <= until;
  }

  get size(): number {
    return this.issued.size;
  }

  private expire(now: number): void {
    for (const [nonce, until] of this.issued) {
      if (until >= now) break; // issued in order, with one TTL: the rest are younger
      this.issued.delete(nonce);
    }
  }
}
