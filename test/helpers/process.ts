// Child processes that tests start, each stopped in afterEach/afterAll even when
// the test failed; `ip netns exec` wraps them when a namespace is given.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { startTime } from '../global-teardown.js';

export interface Proc {
  readonly child: ChildProcess;
  output(): string;
  /** resolves when `pattern` appears in stdout/stderr, rejects after timeoutMs */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<Proc>();
const cleanups = new Set<() => void>();

/** Runs `fn` at the next stopAll(), e.g. to remove a temporary directory. */
export function onStopAll(fn: () => void): void {
  cleanups.add(fn);
}

export function startProc(command: string, args: string[], opts: { netns?: string; cwd?: string } = {}): Proc {
  const [cmd, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, command, ...args]] : [command, args];
  const child = spawn(cmd, argv, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  record(child, [cmd, ...argv]);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} from ${command}; output:\n${out.slice(-3000)}`)), timeoutMs);
        waiters.push(check);
        child.once('exit', (code) => {
          if (!pattern.test(out)) {
            clearTimeout(timer);
            reject(new Error(`${command} exited (${code}) before ${pattern}; output:\n${out.slice(-3000)}`));
          }
        });
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      running.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(proc);
  return proc;
}

/** Leaves a note for test/global-teardown.ts, which stops whatever a crashed test file left running. */
function record(child: ChildProcess, argv: string[]): void {
  const file = process.env.AMPGUARD_TEST_PIDS;
  const started = child.pid === undefined ? null : startTime(child.pid);
  if (file && started) appendFileSync(file, `${child.pid} ${started} ${argv.join(' ').slice(0, 200)}\n`);
}

// A test file that ends without its afterAll (a crash, a timeout in a hook) still
// takes its children with it: kill() is synchronous, so it works in 'exit'.
process.once('exit', () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
  for (const fn of cleanups) fn();
  cleanups.clear();
}
