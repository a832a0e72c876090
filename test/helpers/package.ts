// ampguard as a user installs it: `npm pack` of this checkout, then
// `npm install -g` of the tarball into a temporary prefix. The prefix is
// world-readable (0755 all the way down from the system tmpdir), so an
// unprivileged user can run it wherever the checkout is (a checkout under a
// 0700 home directory is not readable by `nobody`).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Installed {
  readonly prefix: string;
  /** <prefix>/bin/ampguard, the command npm links */
  readonly bin: string;
  /** the installed CLI's JavaScript entry, for `node <cli>` */
  readonly cli: string;
  remove(): void;
}

/**
 * Packs with --ignore-scripts: dist/ is what `npm test` just built (the
 * prepare script would only build it again). Dependencies come from npm's cache
 * (filled by `npm ci`) or the registry.
 */
export function installPackage(): Installed {
  const dir = mkdtempSync(join(tmpdir(), 'ampguard-pkg-'));
  chmodSync(dir, 0o755);
  try {
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { encoding: 'utf8', timeout: 120_000 });
    const tarball = join(dir, out.trim().split('\n').pop() as string);
    if (!existsSync(tarball)) throw new Error(`npm pack made no ${tarball}: ${out}`);
    const prefix = join(dir, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], {
      encoding: 'utf8',
      timeout: 240_000,
      // npm's umask makes what it writes readable by everyone, whatever the caller's
      env: { ...process.env, npm_config_umask: '022' },
    });
    const cli = join(prefix, 'lib', 'node_modules', 'ampguard', 'dist', 'src', 'cli', 'index.js');
    return { prefix, bin: join(prefix, 'bin', 'ampguard'), cli, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The files a tarball would hold, from `npm pack --dry-run --json`. */
export function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { encoding: 'utf8', timeout: 120_000 });
  return (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
}

