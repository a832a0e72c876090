// vitest globalSetup: after the whole run, stops any process a test started
// that is still running, e.g. because a test file crashed before its
// afterEach/afterAll ran. test/helpers/process.ts records every child it
// spawns (pid and kernel start time, so a reused pid is never hit) in the file
// named by AMPGUARD_TEST_PIDS.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export default function setup(): () => void {
  const file = join(tmpdir(), `ampguard-test-pids-${process.pid}`);
  writeFileSync(file, '');
  process.env.AMPGUARD_TEST_PIDS = file;
  return () => {
    const stray: string[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [pid, started, ...command] = line.split(' ');
      if (!pid || !started || startTime(Number(pid)) !== started) continue;
      stray.push(`${pid} ${command.join(' ')}`);
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone in the meantime
      }
    }
    rmSync(file, { force: true });
    if (stray.length > 0) process.stderr.write(`global teardown: stopped ${stray.length} process(es) a test left running:\n  ${stray.join('\n  ')}\n`);
  };
}
