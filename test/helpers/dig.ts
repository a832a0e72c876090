// Real clients: dig (and kdig) as a user would run them, output parsed for the
// few facts tests assert on.
import { execFile } from 'node:child_process';

export function digRaw(args: string[], netns?: string): Promise<string> {
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, 'dig', ...args]] : ['dig', args];
  return new Promise((resolve) => {
    execFile(cmd, argv, { timeout: 20_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
  });
}

export interface DigAnswer {
  readonly raw: string;
  readonly status: string;
  readonly flags: string[];
  readonly answerCount: number;
  readonly size: number;
  readonly transport: 'UDP' | 'TCP' | '';
  readonly timedOut: boolean;
}

export function parseDig(raw: string): DigAnswer {
  const flags = /;; flags: ([a-z ]+);/.exec(raw)?.[1]?.trim().split(/\s+/) ?? [];
  return {
    raw,
    status: /status: ([A-Z]+)/.exec(raw)?.[1] ?? '',
    flags,
    answerCount: Number(/ANSWER: (\d+)/.exec(raw)?.[1] ?? -1),
    size: Number(/MSG SIZE {2}rcvd: (\d+)/.exec(raw)?.[1] ?? 0),
    transport: (/SERVER: \S+ \((UDP|TCP)\)/.exec(raw)?.[1] as 'UDP' | 'TCP' | undefined) ?? '',
    timedOut: /timed out|no servers could be reached/.test(raw),
  };
}

/** dig @host -p port NAME TYPE with extra options; +ignore so a TC answer is shown, not retried. */
export async function dig(host: string, port: number, name: string, type: string, extra: string[] = [], netns?: string): Promise<DigAnswer> {
  return parseDig(await digRaw([`@${host}`, '-p', String(port), name, type, '+tries=1', '+time=2', ...extra], netns));
}
