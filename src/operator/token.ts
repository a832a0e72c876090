// The operator's credential for the API's state changes (docs/security.md): a
// random token in a file only its owner can read (0600), created at the first
// start, read by `ampguard blocks add|del`. Whoever can read the file may
// change the block set; everyone else may only look.
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';

const MAX_TOKEN_FILE = 4096;

/** metrics.token_file as a path: relative to the config file's directory. */
export function tokenPath(configPath: string, tokenFile: string): string {
  return isAbsolute(tokenFile) ? tokenFile : resolve(dirname(resolve(configPath)), tokenFile);
}

/** The token in `path`; throws when it is missing, empty, not a plain file, or readable by others. */
export function readToken(path: string): string {
  // O_NOFOLLOW: a symlink planted where the token should be is refused, not followed
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) throw new Error(`${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
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
