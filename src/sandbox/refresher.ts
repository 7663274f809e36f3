import { closeSync, constants, lstatSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readRunLimits } from '../core/context.js';
import { OzError, describeCause } from '../core/errors.js';
import { decodeJwt } from '../core/jwt.js';
import type { Env } from '../core/settings.js';
import { readFileNoFollow } from '../core/securefile.js';
import { runTokenOf } from './sources/remote-config.js';
import { issueToken } from './sources/index.js';
import { readManifest, tokenExpiryMs, tokenFileContent, writeIn } from './token-manifest.js';

/**
 * Keeps every token file of a prepared directory fresh: each file is re-issued when 80 % of
 * its token's life has passed (the point at which the kubelet rotates projected tokens), so a
 * reader always finds a complete, unexpired token, replaced by an atomic rename. The files,
 * not a schedule in memory, say what is due: the token's `exp` and the file's mtime (when it
 * was written), so a refresher that restarts, or one that finds files a newer prepare wrote,
 * picks up where they are. It runs as `oz federate refresh --dir DIR` (its own process, for
 * `prepare --refresh`) or inside `oz federate exec`.
 */

/** The share of a token's life after which its file is replaced. */
export const REFRESH_AT = 0.8;
/** How often the directory is looked at: how soon cleanup, or its removal, is noticed. */
const TICK_MS = 1000;
/** After a failure, the next try comes after 1 s, 2 s, 4 s … up to this. */
const MAX_BACKOFF_MS = 30_000;
/** Failures after the first are logged at most once a minute. */
const LOG_EVERY_MS = 60_000;
/** The longest gap between tries once the token in place has expired. */
const EXPIRED_RETRY_MS = 10_000;

export interface KeeperOptions {
  dir: string;
  env: Env;
  cwd: string;
  /** One line for the log file (never a token). */
  log: (line: string) => void;
  /** Checked on every tick: false stops the keeper (the lock is no longer ours). */
  stillOurs?: () => boolean;
}

export type StopReason = 'stopped' | 'deadline' | 'run expired' | 'directory removed' | 'cleaned up' | 'lock lost';

interface FileState {
  failures: number;
  nextTryMs: number;
  lastLogMs: number;
}

/** When the run ends: its deadline (the grant's, in remote mode), else the maximum run duration from now. */
export function runEndMs(env: Env, now = Date.now()): number {
  const runToken = runTokenOf(env);
  if (runToken !== undefined) {
    const decoded = decodeJwt(runToken);
    const exp = decoded.ok ? decoded.value.payload.exp : undefined;
    if (typeof exp === 'number') return exp * 1000;
  }
  const limits = readRunLimits(env);
  return limits.deadline.value?.getTime() ?? now + limits.maxRunSeconds.value * 1000;
}

export class Keeper {
  private stopped = false;
  /** Set by a tick that decided to stop. */
  private stopReason: StopReason | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly states = new Map<string, FileState>();
  private readonly endMs: number;

  constructor(private readonly opts: KeeperOptions) {
    this.endMs = runEndMs(opts.env);
  }

  /** Ends the loop; no file is written after this returns (every write is synchronous). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }

  /** Runs until stopped or until there is nothing left to keep; resolves with why it stopped. */
  async run(): Promise<StopReason> {
    while (!this.stopped) {
      const why = this.finished();
      if (why) return why;
      await this.tick();
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, Math.max(10, Math.min(TICK_MS, this.endMs - Date.now())));
      });
    }
    return this.stopReason ?? 'stopped';
  }

  private finished(): StopReason | undefined {
    const { dir } = this.opts;
    try {
      if (!lstatSync(dir).isDirectory()) return 'directory removed';
    } catch {
      return 'directory removed';
    }
    if (this.opts.stillOurs && !this.opts.stillOurs()) return 'lock lost';
    if (Date.now() >= this.endMs) return 'deadline';
    return undefined;
  }

  private async tick(): Promise<void> {
    const { dir, env, cwd } = this.opts;
    const manifest = readManifest(dir);
    if (manifest === undefined) {
      this.stopped = true;
      this.stopReason = 'cleaned up';
      return;
    }
    for (const entry of manifest.files) {
      const now = Date.now();
      const state = this.states.get(entry.file) ?? { failures: 0, nextTryMs: 0, lastLogMs: 0 };
      this.states.set(entry.file, state);
      const current = this.current(join(dir, entry.file));
      // A token that lasts to the end of the run needs no successor.
      if (current !== undefined && current.expiresMs >= this.endMs - 1000) continue;
      const due = current === undefined ? now : current.writtenMs + REFRESH_AT * (current.expiresMs - current.writtenMs);
      if (now < due || now < state.nextTryMs) continue;
      try {
        const issued = await issueToken(env, cwd, new Date(), { audience: entry.audience, requestedSeconds: manifest.duration_seconds });
        // Stopped (cleanup, a signal) or the directory emptied while the request was out: write nothing.
        if (this.stopped || this.finished() || readManifest(dir) === undefined) return;
        writeIn(dir, entry.file, tokenFileContent(issued));
        if (state.failures > 0) this.opts.log(`${entry.file}: refreshed after ${state.failures} failed attempt(s)`);
        state.failures = 0;
        state.nextTryMs = 0;
      } catch (e) {
        if (e instanceof OzError && e.code === 'run_expired') {
          this.opts.log(`${entry.file}: ${e.message}`);
          this.stopped = true;
          this.stopReason = 'run expired';
          return;
        }
        state.failures++;
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (state.failures - 1));
        // While the token in place is valid, the gaps grow but shrink again as its end nears
        // (half the time left, at least a second); once it has expired, a failure is retried
        // at most 10 s later for as long as the run lasts, and said once a minute.
        const left = current === undefined ? 0 : current.expiresMs - now;
        state.nextTryMs = now + (left > 0 ? Math.min(backoff, Math.max(1000, left / 2)) : Math.min(backoff, EXPIRED_RETRY_MS));
        if (state.failures === 1 || now - state.lastLogMs >= LOG_EVERY_MS) {
          state.lastLogMs = now;
          const when = current === undefined ? 'no valid token in place' : `token in place expires ${new Date(current.expiresMs).toISOString()}`;
          this.opts.log(`${entry.file}: refresh failed (attempt ${state.failures}; ${when}): ${e instanceof Error ? e.message : describeCause(e)}`);
        }
      }
    }
  }

  private current(path: string): { writtenMs: number; expiresMs: number } | undefined {
    try {
      const st = lstatSync(path);
      if (!st.isFile()) return undefined;
      const expiresMs = tokenExpiryMs(readFileNoFollow(path).toString('utf8'));
      return expiresMs === undefined ? undefined : { writtenMs: st.mtimeMs, expiresMs };
    } catch {
      return undefined;
    }
  }
}

/** A log that appends one timestamped line per call to `path` (0600, never through a symlink). */
export function fileLog(path: string): (line: string) => void {
  return (line) => {
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, `${new Date().toISOString()} oz refresher[${process.pid}]: ${line}\n`);
      } finally {
        closeSync(fd);
      }
    } catch {
      // The directory is going away: there is no one left to tell.
    }
  };
}
