// `ampguard check-config --config FILE`: exit 0, or 1 with every problem by key
// path (and YAML line and column); warnings (a listener open beyond this host)
// go to stderr and leave the exit code 0.
import { formatIssues } from '../config/load.js';
import { exposureWarnings } from '../config/sanity.js';
import { configIssues, readConfigFile } from './common.js';

export function checkConfigCommand(path: string): number {
  const { runtime, issues } = configIssues(readConfigFile(path));
  if (issues.length === 0 && runtime) {
    const warnings = exposureWarnings(runtime);
    if (warnings.length > 0) process.stderr.write(`${path}: warning:\n${formatIssues(warnings)}\n`);
    process.stdout.write(`${path}: ok\n`);
    return 0;
  }
  process.stderr.write(`${path}: ${issues.length} problem(s)\n${formatIssues(issues)}\n`);
  return 1;
}
