import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

import { OzError, describeCause, quote } from './errors.js';
import { debug } from './debug.js';

/**
 * Files that hold secrets (signing keys, identity tokens) live in private directories:
 * 0700, owned by the current user, never a symlink. Files in them are written to a fresh
 * temporary name (O_EXCL, so nothing planted there is followed or reused) and renamed into
 * place, so a reader sees the old file or the new one, never half of one.
 */

const currentUid = (): number | undefined => (typeof process.getuid === 'function' ? process.getuid() : undefined);

export type DirCheck = {
  code: 'config' | 'usage' | 'io';
  what: string;
  /** What to do instead when the directory is shared or the system's, where chmod is no answer. */
  instead?: string;
};

/**
 * Create `dir` (0700) if it does not exist and check that it is private: a real directory,
 * owned by us, with no group or other write permission (and, for `strict`, no access at all).
 */
export function ensurePrivateDir(dir: string, check: DirCheck, strict = true): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new OzError(check.code, `cannot create ${check.what} ${quote(dir)}: ${describeCause(e)}`, { cause: e });
  }
  assertPrivateDir(dir, check, strict);
}

export function assertPrivateDir(dir: string, check: DirCheck, strict = true): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    throw new OzError(check.code, `cannot read ${check.what} ${quote(dir)}: ${describeCause(e)}`, { cause: e });
  }
  if (st.isSymbolicLink()) {
    throw new OzError(check.code, `${check.what} ${quote(dir)} is a symbolic link; refusing to use it (point oz at the real directory)`);
  }
  if (!st.isDirectory()) {
    throw new OzError(check.code, `${check.what} ${quote(dir)} is not a directory`);
  }
  const uid = currentUid();
  if (uid !== undefined && st.uid !== uid) {
    throw new OzError(check.code, `${check.what} ${quote(dir)} is owned by uid ${st.uid}, not by the current user (uid ${uid}); use a directory of your own`);
  }
  const loose = strict ? st.mode & 0o077 : st.mode & 0o022;
  if (loose) {
    const mode = (st.mode & 0o7777).toString(8).padStart(3, '0');
    const advice = isSharedDir(dir, st.mode) ? `it is shared or a system directory: ${check.instead ?? 'use a private directory of your own'}` : `run: chmod 700 ${shellWord(dir)}`;
    throw new OzError(check.code, `${check.what} ${quote(dir)} has mode ${mode}, open to other users; ${advice}`);
  }
}

/** Directories that belong to the system or to everyone: depth one and the usual below it. */
const SYSTEM_DIRS = new Set([
  '/dev/shm', '/home', '/run/user', '/usr/bin', '/usr/lib', '/usr/libexec', '/usr/local', '/usr/local/bin',
  '/usr/local/lib', '/usr/local/share', '/usr/sbin', '/usr/share', '/var/cache', '/var/lib', '/var/log',
  '/var/run', '/var/spool', '/var/tmp', '/var/www', '/private/tmp', '/private/var',
]);

/**
 * Whether a directory that is open to others is one whose mode is not ours to change: sticky
 * (a shared directory such as /tmp, open to all by design), directly under / (/usr, /srv,
 * /tmp) or a well-known system directory. Making one of those 0700 would break every other
 * user of it.
 */
export function isSharedDir(dir: string, mode: number): boolean {
  if (mode & 0o1000) return true;
  if (dirname(dir) === '/' || dirname(dir) === dir) return true;
  return SYSTEM_DIRS.has(dir);
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

let tempCounter = 0;

function tempNameFor(path: string): string {
  // Unique, not secret: O_EXCL|O_NOFOLLOW make a planted file a failed write, never a followed
  // one. Not node:crypto, which the remote path would otherwise load for this alone.
  tempCounter += 1;
  return `${path}.${process.pid}.${Date.now().toString(36)}${tempCounter}${Math.random().toString(36).slice(2, 10)}.tmp`;
}

function writeExclusive(tmp: string, data: string | Uint8Array, mode: number, durable: boolean): void {
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    // The umask narrows the mode given to open(2): a secret's 0600 stays 0600 under any usual
    // umask, but a public file (0644) would become 0600 under umask 077, so it is set exactly.
    if (mode & 0o077) fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface WriteOptions {
  mode?: number;
  /** fsync before the rename: for keys, which must survive a crash; not for short-lived tokens. */
  durable?: boolean;
}

/** Replace `path` atomically with `data`. Throws the raw fs error; callers add context. */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: WriteOptions = {}): void {
  const tmp = tempNameFor(path);
  try {
    writeExclusive(tmp, data, opts.mode ?? 0o600, opts.durable ?? false);
    renameSync(tmp, path);
    debug(`wrote ${path} (${data.length} bytes, mode ${(opts.mode ?? 0o600).toString(8).padStart(4, '0')}, renamed into place)`);
  } catch (e) {
    tryUnlink(tmp);
    throw e;
  }
}

/**
 * Create `path` with `data` only if it does not exist yet, atomically: the file appears
 * complete or not at all. Returns false when another writer got there first (that file is
 * kept). Used for first-use key creation, where concurrent processes must agree on one key.
 */
export function createFileExclusive(path: string, data: string | Uint8Array, opts: WriteOptions = {}): boolean {
  const tmp = tempNameFor(path);
  try {
    writeExclusive(tmp, data, opts.mode ?? 0o600, opts.durable ?? true);
    linkSync(tmp, path);
    debug(`created ${path} (${data.length} bytes, mode ${(opts.mode ?? 0o600).toString(8).padStart(4, '0')})`);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    tryUnlink(tmp);
  }
}

/**
 * Read a regular file without following a symlink in its last component. A FIFO or device
 * planted at the path is refused (EFTYPE) rather than waited on: O_NONBLOCK keeps the open
 * from blocking, and it changes nothing for a regular file.
 */
export function readFileNoFollow(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EFTYPE' });
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function tryUnlink(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

