import { resolve } from 'node:path';
import envPaths from 'env-paths';
import type { Env } from './context.js';

/** Where the embedded issuer keeps its key: OZ_DATA_DIR, else the platform's data directory for "oz". */
export function dataDir(env: Env, cwd: string): string {
  const override = env.OZ_DATA_DIR;
  if (override !== undefined && override !== '') return resolve(cwd, override);
  return envPaths('oz', { suffix: '' }).data;
}
