// What the benchmark reads off the system: process CPU from /proc/PID/stat,
// hypervisor steal from /proc/stat, and dnsperf's own report.
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';

const TICK_US = 10_000; // USER_HZ is 100 on Linux

/** user+system CPU of the processes, in microseconds */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process is gone
    }
  }
  return ticks * TICK_US;
}

export interface CpuTimes {
  steal: number;
  total: number;
}

export function systemCpu(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return { steal: f[7] ?? 0, total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

export function stealShare(a: CpuTimes, b: CpuTimes): number {
  const total = b.total - a.total;
  return total > 0 ? (b.steal - a.steal) / total : 0;
}

export interface PerfResult {
  qps: number;
  completed: number;
  lost: number;
  latencies: number[];
}

export function dnsperf(args: string[], verbose = false): Promise<PerfResult> {
  return new Promise((resolve, reject) => {
    execFile('dnsperf', [...args, ...(verbose ? ['-v'] : [])], { maxBuffer: 512 * 1024 * 1024, timeout: 120_000 }, (err, stdout) => {
      if (err && !stdout) return reject(err);
      const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? NaN);
      const latencies: number[] = [];
      if (verbose) {
        for (const m of stdout.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) latencies.push(Number(m[1]));
      }
      resolve({
        qps: num(/Queries per second:\s+([\d.]+)/),
        completed: num(/Queries completed:\s+(\d+)/),
        lost: num(/Queries lost:\s+(\d+)/),
        latencies,
      });
    });
  });
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return percentile(s, 50);
}
