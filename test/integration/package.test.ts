// The package as a user installs it: `npm pack`, `npm install -g` of the
// tarball into a fresh prefix, then the `ampguard` command it links checks a
// config and serves DNS in front of a real recursor, dashboard assets included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installPackage, packedFiles, type Installed } from '../helpers/package.js';
import { startRecursor, type Recursor } from '../helpers/recursor.js';
import { startAmpguard, type Ampguard } from '../helpers/ampguard.js';
import { stopAll } from '../helpers/process.js';
import { dig } from '../helpers/dig.js';
import { loadNative } from '../../src/native/index.js';

let installed: Installed | undefined;
let rec: Recursor | undefined;
let ag: Ampguard | undefined;
const dir = mkdtempSync(join(tmpdir(), 'ampguard-pkgtest-'));

beforeAll(() => {
  installed = installPackage();
}, 300_000);

afterAll(async () => {
  await ag?.stop();
  await rec?.close();
  await stopAll();
  installed?.remove();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships what runs and nothing of the tests', () => {
    const files = packedFiles();
    for (const f of ['dist/src/cli/index.js', 'src/dashboard/index.html', 'config/ampguard.yaml', 'deploy/pdns-recursor/recursor.conf', 'deploy/systemd/ampguard.service', 'LICENSE', 'README.md']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('dist/test/') || f.endsWith('.map') || f.endsWith('.png'))).toEqual([]);
    // the addon's sources are built by the install script (docs/performance.md); no build output ships
    expect(files.filter((f) => f.startsWith('src/') && !f.startsWith('src/dashboard/'))).toEqual(['src/native/binding.gyp', 'src/native/build.mjs', 'src/native/udp_batch.c']);
    expect(files.length).toBeLessThan(200);
  });
});

describe('the installed ampguard command', () => {
  it('checks a config: exit 0 for a good one, 1 naming the key for a bad one', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'backends:\n  - address: "127.0.0.1:5300"\n');
    const ok = spawnSync(installed!.bin, ['check-config', '--config', good], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'policy:\n  truncate_above: -1\n');
    const notOk = spawnSync(installed!.bin, ['check-config', '--config', bad], { encoding: 'utf8' });
    expect(notOk.status).toBe(1);
    expect(notOk.stderr).toContain('policy.truncate_above');
  });

  it('runs in front of a real recursor and serves its dashboard', async () => {
    rec = await startRecursor();
    ag = await startAmpguard({
      cli: installed!.bin, // node follows the link npm made, as the shell would
      config: { backends: [{ address: `127.0.0.1:${rec.port}` }], health_check: { qname: 'example.test', qtype: 'SOA' }, workers: 1, block: { mode: 'userspace' } },
    });
    // the install script built the batched-UDP addon where this checkout could build it
    if (loadNative().binding !== null && process.env.AMPGUARD_UDP_IO !== 'dgram') expect(await ag.metric('ampguard_udp_io_mode{mode="native"}')).toBe(1);
    const a = await dig('127.0.0.1', ag.port, 'www.example.test', 'A', ['+notcp']);
    expect(a.status).toBe('NOERROR');
    expect(a.raw).toMatch(/198\.18\.0\.80/);
    const any = await dig('127.0.0.1', ag.port, 'example.test', 'ANY', ['+notcp', '+ignore']);
    expect(any.flags).toContain('tc');
    for (const path of ['/', '/assets/dashboard.js', '/assets/uplot.js']) {
      const res = await fetch(`http://127.0.0.1:${ag.metricsPort}${path}`);
      expect(res.status, path).toBe(200);
    }
  });
});
