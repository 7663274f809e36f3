import type * as Sea from 'node:sea';
import type * as Vm from 'node:vm';

/**
 * The single executable's startup snapshot holds only the hot path (`issue-token`, `prepare`):
 * every byte in it is deserialised at every start, so the rest of oz rides in the executable
 * as assets (build-sea.mjs) that are compiled when a command needs them:
 *
 *   program   the whole CLI (entry src/cli/sea-program.ts), for every other command
 *   undici    the HTTP client for a proxied remote token source
 *   chalk     colour on a terminal
 *
 * Each is one CommonJS file whose require() reaches Node's built-in modules only, which is what
 * a snapshot's main script has. `program.v8cache` is V8's compiled code for the program, made
 * at build time by a run of the executable with OZ_WRITE_CODE_CACHE naming the file to write
 * (as bin/oz's cache is made); V8 checks a cache against the source and the Node it was made
 * with, and compiles afresh from one that does not match.
 */

export function bundled(name: 'program' | 'undici' | 'chalk'): unknown {
  const sea = require('node:sea') as typeof Sea;
  const vm = require('node:vm') as typeof Vm;
  const filename = `${process.execPath}:${name}.cjs`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = Buffer.from(sea.getRawAsset(`${name}.v8cache`) as ArrayBuffer);
  } catch {
    // No cache for this one (undici, chalk, or the build's own first run): compiled from source.
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${sea.getAsset(`${name}.cjs`, 'utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename, cachedData });
  const writeTo = name === 'program' ? process.env.OZ_WRITE_CODE_CACHE : undefined;
  if (writeTo) process.once('exit', () => (require('node:fs') as typeof import('node:fs')).writeFileSync(writeTo, script.createCachedData()));
  const module = { exports: {} as unknown };
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, require, module, filename, process.execPath);
  return module.exports;
}
