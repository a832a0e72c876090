// A replay from start to end, without the command line: a config (as parsed
// YAML), the captures, optional sweep axes; returns one report per
// configuration. What src/cli/replay.ts prints, and what tests and the
// benchmark call directly.
import { validateConfig, formatIssues } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { parseHostPort } from '../config/address.js';
import { PolicyRunner } from './runner.js';
import { replay } from './replay.js';
import type { CaptureTotals } from './loop.js';
import { buildReport, type Report } from './report.js';
import { sweepConfigs, sweepLine, type SweepAxis, type SweepLine, type SweepPoint } from './sweep.js';

interface RunOptions {
  readonly sweep?: readonly SweepAxis[];
  /** extra DNS ports besides 53 and the config's listen ports */
  readonly ports?: readonly number[];
  readonly servers?: readonly string[];
  readonly top?: number;
  readonly progress?: (done: number, total: number) => void;
}

interface RunOutcome {
  readonly totals: CaptureTotals;
  /** one per configuration: the config itself when there is no sweep */
  readonly points: readonly SweepPoint[];
  readonly reports: readonly Report[];
  readonly lines: readonly SweepLine[];
}

/** DNS ports: 53 and every port the config listens on. */
function dnsPorts(config: Config, extra: readonly number[] = []): Set<number> {
  const ports = new Set<number>([53, ...extra]);
  for (const a of [...config.listen.udp, ...config.listen.tcp]) {
    const hp = parseHostPort(a);
    if (hp) ports.add(hp.port);
  }
  return ports;
}

/** The config, or one configuration of a sweep, is not valid (the message names the key path). */
export class ReplayConfigError extends Error {}

export function runReplay(raw: unknown, files: string[], opts: RunOptions = {}): RunOutcome {
  const base = validateConfig(raw ?? {});
  if (!base.ok) throw new ReplayConfigError(formatIssues(base.issues));
  const axes = opts.sweep ?? [];
  let points: SweepPoint[];
  try {
    points = axes.length > 0 ? sweepConfigs(raw, axes) : [{ values: [], config: base.config }];
  } catch (err) {
    throw new ReplayConfigError((err as Error).message);
  }
  const runners = points.map((p) => new PolicyRunner(p.config));
  const totals = replay(files, runners, {
    ports: dnsPorts(base.config, opts.ports),
    servers: opts.servers && opts.servers.length > 0 ? new Set(opts.servers) : undefined,
    progress: opts.progress,
    // twice the backend timeout: a live frontend's SERVFAIL for a timed-out query leaves a little after it, and is no reflection
    answerWindowMs: 2 * base.config.backend_timeout_ms,
  });
  const reports = runners.map((r) => buildReport(totals, r.result(), opts.top ?? 20));
  const lines = axes.length > 0 ? points.map((p, i) => sweepLine(axes, p, reports[i]!)) : [];
  return { totals, points, reports, lines };
}
