// collateral() on plain data: who counts as a real client (TCP, or small
// answers), who was hurt and by how many answers, and what the other prefixes
// (the attacker's) were sent and delivered.
import { describe, expect, it } from 'vitest';
import { collateral, isRealClient, type ClientStat } from '../../../src/replay/collateral.js';

const stat = (o: Partial<ClientStat>): ClientStat => ({ queries: 10, bytesIn: 600, bytesAfter: 0, tcp: 0, replies: 10, small: 0, lost: 0, rung: 1, ...o });

describe('collateral', () => {
  it('a real client is one that sent TCP or whose replies were mostly small answers', () => {
    expect(isRealClient(stat({ tcp: 1 }))).toBe(true);
    expect(isRealClient(stat({ small: 5 }))).toBe(true);
    expect(isRealClient(stat({ small: 4 }))).toBe(false); // 4 of 10: a victim's odd small answer
    expect(isRealClient(stat({ bytesAfter: 9000, lost: 5 }))).toBe(false);
  });

  it('counts the real clients hurt, most hurt first, and the rest on the attacker side', () => {
    const c = collateral(new Map([
      ['198.18.0.1', stat({ tcp: 3, lost: 2, rung: 3 })],
      ['198.18.0.2', stat({ small: 6, lost: 7 })],
      ['198.18.0.3', stat({ small: 10 })],
      ['198.18.0.4', stat({ bytesIn: 1000, bytesAfter: 1500, lost: 40, rung: 3 })],
      ['198.18.0.5', stat({ bytesIn: 1000, bytesAfter: 500 })],
      ['198.18.0.6', stat({ queries: 0, bytesIn: 0 })],
    ]), 1);
    expect(c).toEqual({
      real_clients: 3,
      clients_hurt: 2,
      queries_lost: 9,
      hurt: [{ prefix: '198.18.0.2', queries: 10, lost: 7, tcp: 0, small_answers: 6, rung: 1 }],
      attacker: { prefixes: 2, bytes_sent: 2000, bytes_delivered: 2000, amplification: 1 },
    });
  });

  it('an empty capture hurts no one and gives the attacker nothing', () => {
    expect(collateral(new Map())).toEqual({ real_clients: 0, clients_hurt: 0, queries_lost: 0, hurt: [], attacker: { prefixes: 0, bytes_sent: 0, bytes_delivered: 0, amplification: 0 } });
  });
});
