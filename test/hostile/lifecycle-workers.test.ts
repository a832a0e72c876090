// Workers that keep dying: each replacement waits longer than the one before,
// and the fifth death within a minute ends the service with a clear error and
// a non-zero exit, instead of a respawn loop that never ends.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startAmpguard } from '../helpers/ampguard.js';
import { freePort } from '../helpers/ports.js';
import { stopAll } from '../helpers/process.js';
import { until } from '../helpers/blast.js';

afterEach(() => stopAll());

function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('worker crash loop', () => {
  it('replaces dead workers with growing waits, then gives up with an error and exit 1', async () => {
    const ag = await startAmpguard({ config: { workers: 2, backends: [{ address: `127.0.0.1:${await freePort()}` }], block: { mode: 'userspace' } } });
    const primary = ag.proc.child.pid as number;
    const readies = (): number => (ag.proc.output().match(/replacement worker ready/g) ?? []).length;
    const waits: number[] = [];
    const seen = new Set<number>();
    for (let death = 1; death <= 5; death++) {
      for (const pid of children(primary)) seen.add(pid);
      const [victim] = children(primary);
      expect(victim, `a worker to kill (death ${death})`).toBeDefined();
      process.kill(victim as number, 'SIGKILL');
      if (death === 5) break;
      // the replacement comes up before the next death
      expect(await until(() => readies() === death, 20_000)).toBe(true);
      const m = [...ag.proc.output().matchAll(/"respawn_in_ms":(\d+)/g)].map((x) => Number(x[1]));
      waits.push(m[m.length - 1] as number);
    }
    expect(waits).toEqual([500, 1000, 2000, 4000]);
    expect(await until(() => ag.proc.child.exitCode !== null, 10_000)).toBe(true);
    expect(ag.proc.child.exitCode).toBe(1);
    expect(ag.proc.output()).toMatch(/workers keep dying, ampguard gives up/);
    expect(ag.proc.output()).toMatch(/E_WORKERS: 5 workers died within 60 s/);
    // no worker is left behind
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(await until(() => [...seen].every((pid) => !alive(pid)), 5000)).toBe(true);
  });
});
