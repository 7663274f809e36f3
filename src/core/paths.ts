import { resolve } from 'node:path';
import type { Env } from './settings.js';
import { OzError, describeCause } from './errors.js';

/**
 * Where the embedded issuer keeps its key: OZ_DATA_DIR, else the platform's data directory
 * for "oz". env-paths asks the OS for the home and temp directories as it loads, so it is
 * loaded only when OZ_DATA_DIR does not answer.
 */
export async function dataDir(env: Env, cwd: string): Promise<string> {
  const override = env.OZ_DATA_DIR;
  if (override !== undefined && override !== '') return resolve(cwd, override);
  try {
    const { default: envPaths } = await import('env-paths');
    return envPaths('oz', { suffix: '' }).data;
  } catch (e) {
    // A uid with no passwd entry and no HOME (`docker run --user N`) has no home directory:
    // os.homedir() throws, and the data directory has to be named.
    throw new OzError(
      'config',
      `cannot find a home directory for the data directory (${describeCause(e)}): set OZ_DATA_DIR to a private directory of this user (or set HOME)`,
      { cause: e },
    );
  }
}
