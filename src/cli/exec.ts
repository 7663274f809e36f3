import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { OzError, describeCause, quote } from '../core/errors.js';
import { ensurePrivateDir } from '../core/securefile.js';
import { readSetting } from '../core/settings.js';
import { prepare } from '../sandbox/prepare.js';
import { Keeper } from '../sandbox/refresher.js';
import { EXECUTABLE, PREPARE_DIR } from '../sandbox/settings.js';
import type { EXEC, OptionsOf } from './spec.js';
import { note } from './output.js';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Where exec's fresh directory goes: inside --dir / OZ_PREPARE_DIR (made private first), else
 * $XDG_RUNTIME_DIR, else the system temp directory. mkdtemp makes it 0700 under an
 * unpredictable name, so a shared parent such as /tmp is safe.
 */
function parentDir(flagDir: string | undefined): string {
  const chosen = readSetting(PREPARE_DIR, process.env, flagDir === '' ? undefined : flagDir)?.value;
  if (chosen !== undefined) {
    const dir = resolve(chosen);
    ensurePrivateDir(dir, { code: 'config', what: 'prepare directory' });
    return dir;
  }
  // $XDG_RUNTIME_DIR when the login manager made it; a fresh directory is no place to create it.
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime && isAbsolute(runtime) && isDirectory(runtime) ? runtime : tmpdir();
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * `oz federate exec [prepare's flags] -- CMD [ARGS…]`: the credentials exist for CMD only (in
 * its environment and a private directory), stay fresh while it runs (a keeper in this
 * process: no background refresher to stop), and are removed when it ends, however it ends.
 * SIGINT, SIGTERM and SIGHUP sent to oz are passed on to CMD, and oz exits once CMD has, with
 * CMD's status, or 128+N when CMD died of signal N (what a shell reports).
 */
export async function execCommand(opts: OptionsOf<typeof EXEC>, args?: string | string[]): Promise<void> {
  const command = Array.isArray(args) ? args : args !== undefined ? [args] : [];
  if (command.length === 0 || command[0] === '') throw new OzError('usage', 'no command to run: oz federate exec [options] -- CMD [ARGS…]');
  // Listening before anything is created: a signal that comes while the directory is being
  // prepared, or before the command has started, must still end in the directory's removal.
  const signals = new Relay();
  const dir = mkdtempSync(join(parentDir(opts.dir), 'oz-exec-'));
  let keeper: Keeper | undefined;
  try {
    const ozPath = readSetting(EXECUTABLE, process.env)?.value ?? resolve(process.argv[1] ?? 'oz');
    const prepared = await prepare(
      { ...opts, dir, refresh: true },
      { env: process.env, cwd: process.cwd(), now: new Date(), ozPath, uid: process.getuid?.(), startRefresher: false },
    );
    for (const n of prepared.notes) note(n);
    if (signals.early !== undefined) {
      process.exitCode = 128 + (osConstants.signals[signals.early] ?? 0);
      return;
    }
    const env: NodeJS.ProcessEnv = { ...process.env, ...Object.fromEntries(prepared.vars) };
    if (prepared.tokenFiles.length > 0) {
      keeper = new Keeper({ dir, env: process.env, cwd: process.cwd(), log: (line) => note(`oz: ${line}`) });
      void keeper.run();
    }
    process.exitCode = await runChild(command, env, signals);
  } finally {
    signals.close();
    keeper?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Passes SIGINT, SIGTERM and SIGHUP on to the command; one that comes before it runs is kept. */
class Relay {
  early: NodeJS.Signals | undefined;
  private child: ChildProcess | undefined;
  private readonly handlers = FORWARDED.map((signal) => {
    const handler = () => {
      if (this.child) this.child.kill(signal);
      else this.early ??= signal;
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });

  attach(child: ChildProcess): void {
    this.child = child;
  }

  close(): void {
    this.handlers.forEach((off) => off());
  }
}

function runChild(command: string[], env: NodeJS.ProcessEnv, signals: Relay): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
    // Synchronous since the check for an early signal: none can have come in between.
    signals.attach(child);
    child.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code === 'ENOENT' || e.code === 'EACCES' ? 'usage' : 'io';
      reject(new OzError(code, `cannot run ${quote(command[0]!)}: ${describeCause(e)}`, { cause: e }));
    });
    child.on('exit', (code, signal) => {
      resolvePromise(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}
