// deploy/systemd/ampguard.service as shipped: paths of an `npm install -g`
// (prefix /usr/local), the sandboxing directives (system-call filter, read-only
// system, no new privileges, private umask), and systemd's own
// checks: `systemd-analyze verify` (syntax, directives, executables) and
// `systemd-analyze security` (exposure). The verify run points the unit's
// ampguard at a stand-in executable, since none is installed in /usr/local here.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const unit = readFileSync('deploy/systemd/ampguard.service', 'utf8');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; files: string[] };
const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;

describe('deploy/systemd/ampguard.service', () => {
  it('runs the command `npm install -g` links, and points at documentation the package ships', () => {
    expect(Object.keys(pkg.bin)).toEqual(['ampguard']);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/ampguard run --config \/etc\/ampguard\/ampguard\.yaml$/m);
    expect(unit).toMatch(/^ExecStartPre=\/usr\/local\/bin\/ampguard check-config --config \/etc\/ampguard\/ampguard\.yaml$/m);
    expect(unit).not.toContain('/opt/ampguard');
    const docs = [...unit.matchAll(/^Documentation=file:\/\/\/usr\/local\/lib\/node_modules\/ampguard\/(\S+)$/gm)].map((m) => m[1] as string);
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      expect(pkg.files.some((f) => d.startsWith(f) || d === f), `${d} is in the package`).toBe(true);
      expect(() => readFileSync(d)).not.toThrow();
    }
    expect(pkg.files).toContain('deploy/README.md');
  });

  it('has the sandboxing directives: system-call filter, protected clock/logs/hostname, no SUID, strict read-only system', () => {
    for (const line of [
      'SystemCallFilter=@system-service', 'SystemCallArchitectures=native', 'ProtectClock=yes', 'ProtectKernelLogs=yes',
      'ProtectHostname=yes', 'RestrictSUIDSGID=yes', 'RestrictRealtime=yes', 'UMask=0077', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
      'RuntimeDirectory=ampguard',
    ]) {
      expect(unit, line).toMatch(new RegExp(`^${line}$`, 'm'));
    }
  });

  it.skipIf(!analyze)('passes systemd-analyze verify, and security rates it OK or better', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ampguard-unit-'));
    try {
      const bin = join(dir, 'ampguard');
      writeFileSync(bin, '#!/bin/sh\n');
      chmodSync(bin, 0o755);
      const path = join(dir, 'ampguard.service');
      writeFileSync(path, unit.replaceAll('/usr/local/bin/ampguard', bin));
      const verify = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 30_000 });
      expect(verify.status, verify.stderr).toBe(0);
      expect(verify.stderr.trim(), verify.stderr).toBe('');
      const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', path], { encoding: 'utf8', timeout: 30_000 });
      const level = /Overall exposure level for ampguard\.service: ([\d.]+) (\w+)/.exec(security.stdout);
      expect(level, security.stdout + security.stderr).not.toBeNull();
      // 10 is "UNSAFE"; the hardening brings it to "OK" (below 3)
      expect(Number(level![1]), security.stdout).toBeLessThan(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
