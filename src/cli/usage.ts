// What `ampguard --help` and `ampguard COMMAND --help` print: each command's
// synopsis, options with their defaults, and an example. The option parser in
// commands.ts takes the same names.
interface OptionHelp {
  readonly flag: string;
  readonly help: string;
  readonly default?: string;
}

interface CommandHelp {
  readonly synopsis: string;
  readonly summary: string;
  readonly options: readonly OptionHelp[];
  readonly example: string;
}

const CONFIG: OptionHelp = { flag: '-c, --config FILE', help: 'the YAML config (config/reference.md)' };
const JSON_OUT: OptionHelp = { flag: '--json', help: 'print JSON instead of text', default: 'off' };

export const COMMANDS: Readonly<Record<string, CommandHelp>> = {
  run: {
    synopsis: 'ampguard run --config FILE',
    summary: 'run the frontend until SIGTERM/SIGINT; SIGHUP re-reads the thresholds',
    options: [CONFIG],
    example: 'ampguard run --config /etc/ampguard/ampguard.yaml',
  },
  'check-config': {
    synopsis: 'ampguard check-config --config FILE',
    summary: 'validate a config: exit 0, or 1 with every problem by key path and YAML line and column; warns (exit 0) on listeners open beyond this host',
    options: [CONFIG],
    example: 'ampguard check-config --config /etc/ampguard/ampguard.yaml',
  },
  firewall: {
    synopsis: 'ampguard firewall --config FILE [--format iptables|ip6tables|nft|ipset]',
    summary: 'print the stateless ruleset (ampguard\'s own chains or nft table); deploy/firewall/install.sh loads it',
    options: [CONFIG, { flag: '--format F', help: 'iptables, ip6tables (iptables-restore --noflush input), nft (nft -f input) or ipset (ipset restore input)', default: 'iptables' }],
    example: 'ampguard firewall --config /etc/ampguard/ampguard.yaml --format nft | less',
  },
  blocks: {
    synopsis: 'ampguard blocks list|show IP|add IP|del IP|NET/LEN --config FILE [--json]',
    summary: 'inspect or edit the block set: through the running ampguard (changes prove the token of metrics.token_file), else the kernel set of block.mode',
    options: [CONFIG, JSON_OUT],
    example: 'ampguard blocks show 192.0.2.7 --config /etc/ampguard/ampguard.yaml',
  },
  top: {
    synopsis: 'ampguard top --config FILE [--once] [--interval S] [-n N] [--json]',
    summary: 'the top prefixes by large-reply bytes in the last minute, refreshed like top(1)',
    options: [
      CONFIG,
      { flag: '--once', help: 'print once and exit', default: 'off' },
      { flag: '--interval S', help: 'seconds between refreshes, 0.5 to 3600', default: '2' },
      { flag: '-n N', help: 'how many prefixes, 1 to 100', default: '20' },
      { flag: '--json', help: 'print the list once as JSON (implies --once)', default: 'off' },
    ],
    example: 'ampguard top --config /etc/ampguard/ampguard.yaml --once -n 5',
  },
  'gen-config': {
    synopsis: 'ampguard gen-config [--out DIR]',
    summary: 'write the default config (ampguard.yaml) and the key reference (reference.md) from the schema',
    options: [{ flag: '--out DIR', help: 'where to write them', default: 'config' }],
    example: 'ampguard gen-config --out /tmp/ampguard-config',
  },
  replay: {
    synopsis: 'ampguard replay --config FILE [--json] [--sweep KEY=V1,V2,...] [--plot FILE.svg] [--port N] [--server IP] [-n N] CAPTURE...',
    summary: 'run packet captures (tcpdump -w) through the policy of FILE offline and report what it would have done (docs/replay.md)',
    options: [
      CONFIG,
      JSON_OUT,
      { flag: '--sweep KEY=V1,V2,...', help: 'replay once per value of a config key (one or two keys)' },
      { flag: '--plot FILE.svg', help: 'draw the sweep' },
      { flag: '--port N', help: 'the DNS port(s) in the capture, 1-65535 (repeatable)', default: 'the listen ports of FILE' },
      { flag: '--server IP', help: 'the server address(es) in the capture (repeatable)', default: 'any' },
      { flag: '-n N', help: 'top offenders to list, 1 to 10000', default: '20' },
    ],
    example: 'ampguard replay --config ampguard.yaml --sweep policy.large_response.burst=5,10,20 dns.pcap',
  },
};

export function globalUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: ampguard COMMAND [options]    (ampguard COMMAND --help for its options)',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    '  --version  print the version',
    '  --help     this text',
  ].join('\n');
}

export function commandUsage(name: string): string {
  const c = COMMANDS[name]!;
  const width = Math.max(...c.options.map((o) => o.flag.length));
  return [
    `usage: ${c.synopsis}`,
    '',
    c.summary,
    '',
    'options:',
    ...c.options.map((o) => `  ${o.flag.padEnd(width)}  ${o.help}${o.default !== undefined ? ` (default: ${o.default})` : ''}`),
    '',
    `example:\n  ${c.example}`,
  ].join('\n');
}
