// The `ampguard` command line (loaded by index.ts once signals are handled):
// parses it and hands over to one file per command. Control-plane errors print
// their code and message, exit 1.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { COMMANDS, commandUsage, globalUsage } from './usage.js';
import { CliError } from './common.js';
import { runCommand } from './run.js';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root.js';
import { checkConfigCommand } from './check-config.js';
import { firewallCommand } from './firewall.js';
import { blocksCommand } from './blocks.js';
import { genConfigCommand } from './gen-config.js';
import { topCommand } from './top.js';
import { replayCommand } from './replay.js';

/** package.json's version */
function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** A number option: within [min, max] (and whole when asked), or an E_USAGE error naming it. */
function numberOption(name: string, text: string, min: number, max: number, integer: boolean): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new CliError('E_USAGE', `${name} ${text}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`, 2);
  }
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      format: { type: 'string', default: 'iptables' },
      out: { type: 'string', default: 'config' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
      once: { type: 'boolean', default: false },
      interval: { type: 'string', default: '2' },
      n: { type: 'string', short: 'n', default: '20' },
      json: { type: 'boolean', default: false },
      sweep: { type: 'string', multiple: true, default: [] },
      plot: { type: 'string' },
      port: { type: 'string', multiple: true, default: [] },
      server: { type: 'string', multiple: true, default: [] },
    },
  });
  let [command, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`ampguard ${version()}\n`);
    return 0;
  }
  if (command === 'help') [command, ...rest] = rest;
  if (command !== undefined && !(command in COMMANDS)) {
    throw new CliError('E_USAGE', `unknown command "${command}"\n${globalUsage()}`, 2);
  }
  if (!command) {
    process.stdout.write(`${globalUsage()}\n`);
    return values.help || positionals[0] === 'help' ? 0 : 2;
  }
  if (values.help || positionals[0] === 'help') {
    process.stdout.write(`${commandUsage(command)}\n`);
    return 0;
  }
  if (command === 'gen-config') return genConfigCommand(values.out as string);
  const config = values.config;
  if (!config) throw new CliError('E_USAGE', `${command}: --config FILE is required\n${commandUsage(command)}`, 2);
  switch (command) {
    case 'run':
      return runCommand(config);
    case 'check-config':
      return checkConfigCommand(config);
    case 'firewall':
      return firewallCommand(config, values.format as string);
    case 'blocks':
      return blocksCommand(config, rest, { json: values.json as boolean });
    case 'top':
      return topCommand(config, {
        once: (values.once as boolean) || (values.json as boolean),
        json: values.json as boolean,
        intervalS: numberOption('--interval', values.interval as string, 0.5, 3600, false),
        n: numberOption('-n', values.n as string, 1, 100, true),
      });
    case 'replay': {
      for (const s of values.server as string[]) {
        if (isIP(s) === 0) throw new CliError('E_USAGE', `--server ${s}: expected an IP address`, 2);
      }
      return replayCommand({
        config, captures: rest, json: values.json as boolean, sweep: values.sweep as string[], plot: values.plot as string | undefined,
        ports: values.port as string[], servers: values.server as string[], top: numberOption('-n', values.n as string, 1, 10_000, true),
      });
    }
    default:
      throw new CliError('E_USAGE', `unknown command "${command}"\n${globalUsage()}`, 2);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`ampguard: ${err.code}: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ampguard: E_USAGE: ${err.message}\n${globalUsage()}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`ampguard: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
    // a start that failed half way may leave sockets and timers open: leave anyway
    process.exit();
  },
);
