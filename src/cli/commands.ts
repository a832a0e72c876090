// The `ampguard` command line (loaded by index.ts once signals are handled):
// parses it and hands over to one file per command. Control-plane errors print
// their code and message, exit 1.
import { parseArgs } from 'node:util';
import { CliError } from './common.js';
import { runCommand } from './run.js';
import { checkConfigCommand } from './check-config.js';
import { firewallCommand } from './firewall.js';
import { blocksCommand } from './blocks.js';
import { genConfigCommand } from './gen-config.js';
import { topCommand } from './top.js';
import { replayCommand } from './replay.js';

const USAGE = `usage:
  ampguard run --config FILE
  ampguard check-config --config FILE
  ampguard firewall --config FILE [--format iptables|ip6tables|nft|ipset]
  ampguard blocks list|add IP|del IP --config FILE
  ampguard top --config FILE [--once] [--interval S] [-n N]
  ampguard gen-config [--out DIR]
  ampguard replay --config FILE [--json] [--sweep KEY=V1,V2,...] [--plot FILE.svg] [--port N] [--server IP] [-n N] CAPTURE...`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      format: { type: 'string', default: 'iptables' },
      out: { type: 'string', default: 'config' },
      help: { type: 'boolean', short: 'h' },
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
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (command === 'gen-config') return genConfigCommand(values.out as string);
  const config = values.config;
  if (!config) throw new CliError('E_USAGE', `${command}: --config FILE is required\n${USAGE}`, 2);
  switch (command) {
    case 'run':
      return runCommand(config);
    case 'check-config':
      return checkConfigCommand(config);
    case 'firewall':
      return firewallCommand(config, values.format as string);
    case 'blocks':
      return blocksCommand(config, rest);
    case 'top':
      return topCommand(config, {
        once: values.once as boolean,
        intervalS: Math.max(0.5, Number(values.interval) || 2),
        n: Math.max(1, Math.min(100, Number(values.n) || 20)),
      });
    case 'replay':
      return replayCommand({
        config, captures: rest, json: values.json as boolean, sweep: values.sweep as string[], plot: values.plot as string | undefined,
        ports: values.port as string[], servers: values.server as string[], top: Math.max(1, Math.min(10_000, Number(values.n) || 20)),
      });
    default:
      throw new CliError('E_USAGE', `unknown command "${command}"\n${USAGE}`, 2);
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
      process.stderr.write(`ampguard: E_USAGE: ${err.message}\n${USAGE}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`ampguard: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
    // a start that failed half way may leave sockets and timers open: leave anyway
    process.exit();
  },
);
