import type { ChalkInstance } from 'chalk';

/**
 * Colour only on a terminal. FORCE_COLOR turns it on anywhere (and wins, as in Node itself);
 * a non-empty NO_COLOR turns it off (https://no-color.org). chalk alone ignores NO_COLOR.
 */
export function colourLevel(env: NodeJS.ProcessEnv, isTTY: boolean): 0 | 1 | 2 | 3 {
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number.parseInt(force, 10);
    return force === '' || force === 'true' || Number.isNaN(n) ? 1 : (Math.min(Math.max(n, 1), 3) as 1 | 2 | 3);
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (!isTTY || env.TERM === 'dumb') return 0;
  return 1;
}

/** chalk is loaded only when colour is actually wanted. */
export async function painter(stream: NodeJS.WriteStream): Promise<ChalkInstance | undefined> {
  const level = colourLevel(process.env, stream.isTTY === true);
  if (level === 0) return undefined;
  return new (chalkConstructor(await import('chalk')))({ level });
}

/**
 * chalk is ESM; the build gives both bundles the CommonJS file dist/vendor/chalk.cjs (see
 * tsup.config.ts). The hot CommonJS bundle sees its exports by name, but a split ESM chunk
 * re-exports the whole CommonJS module as `default` only, so `Chalk` is found there.
 */
function chalkConstructor(mod: typeof import('chalk') & { default?: { Chalk?: unknown } }): typeof import('chalk').Chalk {
  const Chalk = mod.Chalk ?? mod.default?.Chalk;
  if (typeof Chalk !== 'function') throw new TypeError('chalk has no Chalk export');
  return Chalk as typeof import('chalk').Chalk;
}
