// The operator's credential for the API's state changes (docs/security.md): a
// random token in a file only its owner can read (0600), created at the first
// start, used by `ampguard blocks add|del` to prove (never send, proof.ts) that
// it holds it. Whoever can read the file may change the block set; everyone
// else may only look.
import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';

const MAX_TOKEN_FILE = 4096;
/** where the shipped unit's RuntimeDirectory=ampguard puts it */
const SERVICE_TOKEN = '/run/ampguard/token';

/** systemd's $RUNTIME_DIRECTORY (its first entry), when the service runs under a unit that sets one */
function runtimeDirectory(env: NodeJS.ProcessEnv): string | null {
  const first = (env.RUNTIME_DIRECTORY ?? '').split(':')[0] ?? '';
  return isAbsolute(first) ? first : null;
}

/**
 * metrics.token_file as a path, for the service: as configured (relative to
 * the config file's directory), or, when empty, `$RUNTIME_DIRECTORY/token`
 * under systemd and `ampguard.token` beside the config file otherwise.
 */
export function tokenPath(configPath: string, tokenFile: string, env: NodeJS.ProcessEnv = process.env): string {
  if (tokenFile === '') {
    const rt = runtimeDirectory(env);
    if (rt !== null) return resolve(rt, 'token');
    return resolve(dirname(resolve(configPath)), 'ampguard.token');
  }
  return isAbsolute(tokenFile) ? tokenFile : resolve(dirname(resolve(configPath)), tokenFile);
}

/**
 * The same file, as the CLI finds it: the CLI does not run under the unit, so
 * with an empty metrics.token_file it takes the unit's /run/ampguard/token
 * when that exists (and it may see it), else the file beside the config.
 */
export function cliTokenPath(configPath: string, tokenFile: string, env: NodeJS.ProcessEnv = process.env): string {
  if (tokenFile === '' && runtimeDirectory(env) === null && existsSync(SERVICE_TOKEN)) return SERVICE_TOKEN;
  return tokenPath(configPath, tokenFile, env);
}

/**
 * Who may own a token file its reader trusts: the reader, root, or the owner of
 * the directory it is in (the service's user for /run/ampguard/token, read by
 * root). A file another user planted in a directory open to them is none of these.
 */
function ownerTrusted(path: string, uid: number): boolean {
  const me = process.geteuid?.() ?? uid;
  if (uid === me || uid === 0) return true;
  try {
    return statSync(dirname(path)).uid === uid;
  } catch {
    return false;
  }
}

/** The token in `path`; throws when it is missing, empty, not a plain file, readable by others, or owned by someone untrusted. */
export function readToken(path: string): string {
  // O_NOFOLLOW: a symlink planted where the token should be is refused, not followed
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) throw new Error(`${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    if (!ownerTrusted(path, st.uid)) {
      throw new Error(`${path} belongs to uid ${st.uid}, neither this user (uid ${process.geteuid?.() ?? '?'}), root, nor the owner of its directory: refused (planted?)`);
    }
    const buf = Buffer.alloc(MAX_TOKEN_FILE);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const token = buf.subarray(0, n).toString('utf8').trim();
    if (token.length < 16 || /\s/.test(token)) throw new Error(`${path} holds no usable token (16 or more characters, no spaces)`);
    return token;
  } finally {
    closeSync(fd);
  }
}

/** Reads the token, or creates the file (0600, 32 random bytes in hex) when there is none. */
export function ensureToken(path: string): string {
  try {
    return readToken(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  // O_EXCL: if another process created it meanwhile, we fail rather than overwrite
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  return readToken(path);
}
