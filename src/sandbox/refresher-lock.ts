import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFileExclusive, readFileNoFollow, tryUnlink } from '../core/securefile.js';

/**
 * One refresher per directory. Its pid lives in `oz-refresher.pid` in the directory it serves,
 * created with O_EXCL (and linked into place, so the file is complete or absent): a second
 * `prepare --refresh` finds it there and starts nothing. A pid file left by a refresher that
 * died is recognised (no such process, or a process that is not an oz refresher) and replaced.
 * A refresher that finds its pid no longer in the file stops, so even the one race left (two
 * starters replacing one stale file at once) settles on a single refresher within a second.
 */
export const LOCK_FILE = 'oz-refresher.pid';
export const LOG_FILE = 'oz-refresher.log';

/** The argv after the executable that marks a refresher, so `ps` shows which directory it serves. */
export function refresherArgs(dir: string): string[] {
  return ['federate', 'refresh', '--dir', dir];
}

/** The pid in the directory's lock file, whether or not that process lives. */
export function lockedPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileNoFollow(join(dir, LOCK_FILE)).toString('utf8').trim());
    return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the refresher serving `dir`, if one is alive. */
export function runningRefresher(dir: string): number | undefined {
  const pid = lockedPid(dir);
  return pid !== undefined && isRefresher(pid, dir) ? pid : undefined;
}

function isRefresher(pid: number, dir: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Where /proc exists, a recycled pid is told apart by its command line.
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return true;
  }
  return cmdline.split('\0').join(' ').includes(refresherArgs(dir).join(' '));
}

/** Take the lock for this process; false when a live refresher holds it. */
export function acquireLock(dir: string): boolean {
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createFileExclusive(path, mine, { mode: 0o600, durable: false })) return true;
    const held = lockedPid(dir);
    if (held === process.pid) return true;
    if (held !== undefined && isRefresher(held, dir)) return false;
    tryUnlink(path);
  }
  return false;
}

export function holdsLock(dir: string): boolean {
  return lockedPid(dir) === process.pid;
}

export function releaseLock(dir: string): void {
  if (holdsLock(dir)) tryUnlink(join(dir, LOCK_FILE));
}

/** Stop the refresher serving `dir` and wait (briefly) until it has gone, so it writes nothing more. */
export function stopRefresher(dir: string): boolean {
  const pid = runningRefresher(dir);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const until = Date.now() + 3000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  // Gone, or a zombie waiting to be reaped (no command line any more): either way it writes nothing.
  while (Date.now() < until && isRefresher(pid, dir)) {
    Atomics.wait(nap, 0, 0, 20);
  }
  return true;
}

/**
 * Start the refresher for `dir` in the background, detached (its own session, no terminal,
 * stdio on /dev/null), unless one is already running. Returns the pid of the one serving it.
 */
export async function startRefresher(dir: string, env: NodeJS.ProcessEnv): Promise<{ pid: number | undefined; started: boolean }> {
  const running = runningRefresher(dir);
  if (running !== undefined) return { pid: running, started: false };
  // node:child_process (and the networking it loads) only for --refresh: a plain prepare, on
  // every shell start, does not pay for it.
  const { spawnDetached } = await import('./spawn-detached.js');
  // The same oz that runs now: node and its script, or a single executable on its own.
  const self = process.argv[1] && process.argv[1] !== process.execPath ? [process.argv[1]] : [];
  return { pid: spawnDetached(process.execPath, [...self, ...refresherArgs(dir)], env), started: true };
}
