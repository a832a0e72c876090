// `ampguard replay --config FILE [--json] [--sweep KEY=V1,V2 ...] [--plot FILE]
// [--port N ...] [--server IP ...] [-n N] CAPTURE...`: runs packet captures
// through the policy of FILE on the captures' own clock, without sockets or
// kernel state, and reports what it would have done (docs/replay.md).
import { writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CliError, readConfigFile } from './common.js';
import { CaptureError } from '../replay/capture.js';
import { ReplayConfigError, runReplay } from '../replay/run.js';
import { formatReport } from '../replay/report.js';
import { formatSweep, parseSweep, type SweepAxis } from '../replay/sweep.js';
import { sweepSvg } from '../replay/plot.js';
import { progressBar } from '../replay/progress.js';

interface ReplayArgs {
  readonly config: string;
  readonly captures: readonly string[];
  readonly json: boolean;
  readonly sweep: readonly string[];
  readonly plot?: string;
  readonly ports: readonly string[];
  readonly servers: readonly string[];
  readonly top: number;
}

export async function replayCommand(a: ReplayArgs): Promise<number> {
  if (a.captures.length === 0) throw new CliError('E_USAGE', 'replay: name at least one capture file (tcpdump -w)', 2);
  let raw: unknown;
  try {
    raw = parseYaml(readConfigFile(a.config)) ?? {};
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError('E_CONFIG', `invalid config ${a.config}: ${(err as Error).message.split('\n')[0]}`);
  }
  let axes: SweepAxis[];
  try {
    axes = a.sweep.map(parseSweep);
    if (axes.length > 2) throw new Error('--sweep takes one or two keys');
  } catch (err) {
    throw new CliError('E_USAGE', (err as Error).message, 2);
  }
  if (a.plot && axes.length === 0) throw new CliError('E_USAGE', '--plot FILE draws a sweep: give --sweep KEY=V1,V2,...', 2);
  const ports = a.ports.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new CliError('E_USAGE', `--port ${p}: expected 1-65535`, 2);
    return n;
  });
  const bar = progressBar();
  let outcome;
  try {
    outcome = runReplay(raw, [...a.captures], { sweep: axes, ports, servers: a.servers, top: a.top, progress: (d, t) => bar.update(d, t) });
  } catch (err) {
    if (err instanceof CaptureError) throw new CliError('E_CAPTURE', err.message);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw new CliError('E_CAPTURE', `cannot read capture: ${e.message}`);
    if (err instanceof ReplayConfigError) throw new CliError('E_CONFIG', `invalid config ${a.config}:\n${err.message}`);
    throw err;
  } finally {
    bar.end();
  }
  const totals = outcome.totals;
  if (totals.packets === 0 && totals.captureErrors.length > 0) {
    // nothing was read: a report of nothing would only hide the error
    throw new CliError('E_CAPTURE', totals.captureErrors.map((e) => e.message).join('\n'));
  }
  if (a.plot) {
    writeFileSync(a.plot, sweepSvg(axes, outcome.lines, `ampguard replay sweep: ${a.captures.join(', ')}`));
  }
  if (a.json) {
    const body = axes.length > 0 ? { sweep: outcome.lines, reports: outcome.reports } : outcome.reports[0];
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
  } else if (axes.length > 0) {
    process.stdout.write(formatSweep(axes, outcome.lines));
  } else {
    process.stdout.write(formatReport(outcome.reports[0]!));
  }
  // the report is out, for what was read; the exit says it is not the whole capture
  const problems = totals.captureErrors.map((e) => `${e.message}; the report covers the ${totals.packets.toLocaleString('en-US')} frames read before it`);
  if (totals.internalError !== null) problems.push(`internal error, ${totals.skipped.internal_error} frames skipped: ${totals.internalError}`);
  if (problems.length > 0) throw new CliError('E_CAPTURE', problems.join('\nampguard: E_CAPTURE: '));
  return 0;
}
