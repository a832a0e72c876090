// The one way ampguard runs kernel commands (CONTRIBUTING.md rule 11): an argument array, no
// shell, a timeout, and the outcome returned as a value, never thrown.
import { spawn } from 'node:child_process';

export interface ExecResult {
  readonly ok: boolean;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export type Exec = (command: string, args: readonly string[], input?: string) => Promise<ExecResult>;

export function createExec(timeoutMs = 5000): Exec {
  return (command, args, input) =>
    new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let child;
      try {
        child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
      } catch (err) {
        resolve({ ok: false, code: null, stdout, stderr: (err as Error).message });
        return;
      }
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err) => resolve({ ok: false, code: null, stdout, stderr: stderr + err.message }));
      child.on('close', (code) => resolve({ ok: code === 0, code, stdout, stderr: stderr.trim() }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
    });
}

/** "ipset add x 1.2.3.4: exit 1: reason" — for log lines and errors. */
export function describeFailure(command: string, args: readonly string[], r: ExecResult): string {
  return `${command} ${args.join(' ')}: exit ${r.code ?? 'none'}: ${r.stderr || r.stdout}`.trim();
}
