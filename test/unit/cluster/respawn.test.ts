// When dead workers are replaced: backoff doubling within the window, giving up
// after repeated crashes, a fresh start once crashes are old.
import { describe, expect, it } from 'vitest';
import { RespawnPolicy } from '../../../src/cluster/respawn.js';

describe('RespawnPolicy', () => {
  it('doubles the wait for crashes close together and gives up at the fifth within a minute', () => {
    const p = new RespawnPolicy();
    expect(p.onCrash(0)).toEqual({ respawnInMs: 500 });
    expect(p.onCrash(600)).toEqual({ respawnInMs: 1000 });
    expect(p.onCrash(1700)).toEqual({ respawnInMs: 2000 });
    expect(p.onCrash(3800)).toEqual({ respawnInMs: 4000 });
    expect(p.onCrash(7900)).toHaveProperty('giveUp');
  });

  it('forgets crashes older than the window', () => {
    const p = new RespawnPolicy();
    for (let i = 0; i < 4; i++) p.onCrash(i * 1000);
    expect(p.onCrash(70_000)).toEqual({ respawnInMs: 500 });
  });

  it('caps the wait', () => {
    const p = new RespawnPolicy({ baseDelayMs: 500, maxDelayMs: 3000, windowMs: 60_000, maxCrashes: 100 });
    let last = { respawnInMs: 0 } as { respawnInMs: number };
    for (let i = 0; i < 10; i++) last = p.onCrash(i) as { respawnInMs: number };
    expect(last.respawnInMs).toBe(3000);
  });
});
