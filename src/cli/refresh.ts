import { isAbsolute, join, resolve } from 'node:path';
import { OzError, quote } from '../core/errors.js';
import { assertPrivateDir } from '../core/securefile.js';
import { acquireLock, holdsLock, LOG_FILE, releaseLock } from '../sandbox/refresher-lock.js';
import { Keeper, fileLog } from '../sandbox/refresher.js';
import { readManifest } from '../sandbox/token-manifest.js';
import type { OptionsOf, REFRESH } from './spec.js';

/**
 * The background refresher that `prepare --refresh` starts: detached, in its own session, with
 * stdio on /dev/null, so it outlives the shell and never writes to it; what it has to say goes
 * to `oz-refresher.log` in the directory. It exits at the run's end, when cleanup stops it
 * (SIGTERM), when the directory or its manifest goes, or when another refresher took the lock.
 */
export async function refreshCommand(opts: OptionsOf<typeof REFRESH>): Promise<void> {
  // Absolute, as prepare names it: `ps` then shows which directory is served, and a second
  // prepare recognises the refresher by that command line.
  if (!isAbsolute(opts.dir)) throw new OzError('usage', `--dir ${quote(opts.dir)} must be an absolute path`);
  const dir = resolve(opts.dir);
  assertPrivateDir(dir, { code: 'config', what: 'prepare directory' });
  const manifest = readManifest(dir);
  if (manifest === undefined) {
    throw new OzError('config', `no token files prepared in ${quote(dir)}: run \`oz federate prepare --refresh --dir ${dir}\``);
  }
  // Another refresher serves this directory: one is enough.
  if (!acquireLock(dir)) return;
  const log = fileLog(join(dir, LOG_FILE));
  const keeper = new Keeper({ dir, env: process.env, cwd: process.cwd(), log, stillOurs: () => holdsLock(dir) });
  // The shell that started it may hang up; the refresher serves the run, not the shell.
  process.on('SIGHUP', () => {});
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      // Every write is synchronous, so none is half done when this runs.
      keeper.stop();
      log(`stopped by ${signal}`);
      releaseLock(dir);
      process.exit(0);
    });
  }
  log(`keeping ${manifest.files.map((f) => f.file).join(', ')} fresh (tokens of ${manifest.duration_seconds}s, replaced at 80% of their life)`);
  const why = await keeper.run();
  // A removed directory or manifest means cleanup: writing a log line would leave a file behind.
  if (why !== 'directory removed' && why !== 'cleaned up' && why !== 'lock lost') log(`stopped: ${why}`);
  releaseLock(dir);
}
