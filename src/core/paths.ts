import { resolve } from 'node:path';
import type { Env } from './context.js';

/**
 * Where the embedded issuer keeps its key: OZ_DATA_DIR, else the platform's data directory
 * for "oz". env-paths asks the OS for the home and temp directories as it loads, so it is
 * loaded only when OZ_DATA_DIR does not answer.
 */
export async function dataDir(env: Env, cwd: string): Promise<string> {
  const override = env.OZ_DATA_DIR;
  if (override !== undefined && override !== '') return resolve(cwd, override);
  const { default: envPaths } = await import('env-paths');
  return envPaths('oz', { suffix: '' }).data;
}
