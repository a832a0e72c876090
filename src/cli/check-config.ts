// `ampguard check-config --config FILE`: exit 0, or 1 with every problem by key path.
import { formatIssues } from '../config/load.js';
import { configIssues, readConfigFile } from './common.js';

export function checkConfigCommand(path: string): number {
  const { issues } = configIssues(readConfigFile(path));
  if (issues.length === 0) {
    process.stdout.write(`${path}: ok\n`);
    return 0;
  }
  process.stderr.write(`${path}: ${issues.length} problem(s)\n${formatIssues(issues)}\n`);
  return 1;
}
