// An ampguard that a test runs on the host itself (not in a namespace of its
// own) as root, in block.mode auto/ipset, creates ipsets and raw PREROUTING
// rules on the host and leaves them when it stops, as it should for a real
// deployment. Tests must not leave them: this removes the rules for the port
// the test used, then every set of the test's name that no rule refers to any
// more (a set a real deployment still uses keeps its rules, and is kept).
import { spawnSync } from 'node:child_process';

const run = (cmd: string, args: string[]): { status: number; out: string } => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}` };
};

export function removeHostKernelState(port: number, set = 'throttled-ips'): void {
  if (process.getuid?.() !== 0) return;
  const sets = [set, `${set}-v6`, `${set}-net`, `${set}-net-v6`];
  for (const tool of ['iptables', 'ip6tables']) {
    const rules = run(tool, ['-w', '-t', 'raw', '-S', 'PREROUTING']);
    if (rules.status !== 0) continue;
    for (const line of rules.out.split('\n')) {
      const m = /--match-set (\S+) src/.exec(line);
      if (!line.startsWith('-A PREROUTING') || !line.includes(`--dport ${port} `) || !m || !sets.includes(m[1]!)) continue;
      run(tool, ['-w', '-t', 'raw', '-D', ...line.split(/\s+/).slice(1)]);
    }
  }
  const referenced = ['iptables', 'ip6tables'].map((tool) => run(tool, ['-w', '-t', 'raw', '-S']).out).join('\n');
  for (const name of sets) {
    if (!referenced.includes(`--match-set ${name} `)) run('ipset', ['destroy', name]);
  }
}
