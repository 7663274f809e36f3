import { defineConfig, type Options } from 'tsup';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearsalEnv } from './src/cli/rehearsal.js';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

/*
 * Start-up is what users feel (Google's libraries and shell init scripts run oz on every
 * refresh), so dist/ holds two builds of src/cli/main.ts; the README's Performance section has the figures.
 *
 *   dist/cli.cjs        the hot path, one CommonJS file: `federate issue-token` and
 *                       `federate prepare` on either token source. CommonJS because Node 20's
 *                       ESM loader costs several ms per process (its own start, then a
 *                       resolution, a link and, for every built-in module imported, a facade
 *                       that touches all of its exports); one file because every extra file is
 *                       another resolve, read and compile.
 *   dist/main.cjs       the whole CLI, one CommonJS file; commander and jose
 *                       live only here. bin/oz imports it directly for other commands and
 *                       --help; the hot path hands over to it (below) for arguments that need
 *                       commander's messages.
 *   dist/cli.cjs.v8cache  V8's compiled code for dist/cli.cjs, which bin/oz runs it from.
 *   dist/vendor/*.cjs   undici and chalk, one CommonJS file each, shared by both builds and
 *                       loaded only when used (the remote token source through a proxy: a
 *                       direct request goes over node:http; colour on a terminal).
 *
 * The hand-over: in the hot build, main.ts's `import('./program.js')` is replaced with a
 * module that requires dist/main.cjs, which runs main.ts again from the start, in a world of
 * its own (its own OzError class, its own error handling), so no object crosses from one
 * build to the other. The hot path's fast parsers return false before doing anything when
 * they cannot handle the arguments, so running main again repeats nothing observable.
 */

// tsup runs the builds below in parallel; its own clean would race between them.
rmSync('dist', { recursive: true, force: true });

const VENDOR = { undici: 'vendor/undici', chalk: 'vendor/chalk' } as const;

/**
 * Packages resolve to their vendor file, at run time, through `require` (real or created).
 * undici parses HTTP with llhttp compiled to WebAssembly. V8 compiles it at once with its
 * baseline compiler (Liftoff) and then again, on a background thread, with its optimising
 * one, and the process does not exit before that second compilation is done: about 60 ms of
 * every proxied remote `issue-token` on 2 cores, for a CLI that parses one response. --liftoff-only
 * keeps the first compilation only. It applies to WebAssembly compiled after it is set, and
 * oz has no other WebAssembly on that path (`oz issuer serve` answers with node:http). It is set
 * once undici is loaded, not before: V8 checks its flags against every code cache, so each of
 * Node's built-in modules loaded after a flag changes is compiled from source (undici loads a
 * good many: set first, the flag made a proxied `issue-token` about 10 % slower). undici
 * compiles llhttp at its first connection, after this.
 */
const vendorPlugin = {
  name: 'oz-vendor',
  setup(build: { onResolve: Function; onLoad: Function }) {
    const filter = new RegExp(`^(${Object.keys(VENDOR).join('|')})$`);
    build.onResolve({ filter }, (args: { path: string; importer: string }) =>
      args.importer.includes('/node_modules/') ? undefined : { path: args.path, namespace: 'oz-vendor' },
    );
    // The vendor file itself is left for Node to load, at run time, relative to dist/.
    build.onResolve({ filter: /.*/, namespace: 'oz-vendor' }, (args: { path: string }) => ({ path: args.path, external: true }));
    build.onLoad({ filter: /.*/, namespace: 'oz-vendor' }, (args: { path: string }) => ({
      contents:
        `module.exports = require(${JSON.stringify(`./${VENDOR[args.path as keyof typeof VENDOR]}.cjs`)});` +
        (args.path === 'undici' ? "\nrequire('node:v8').setFlagsFromString('--liftoff-only');" : ''),
      loader: 'js',
    }));
  },
};

/**
 * In the hot build, the commander program is dist/main.cjs, run from the start. The require()
 * lives in dist/hand-over.cjs, an ordinary CommonJS file, because dist/cli.cjs may be run from
 * a V8 code cache (bin/oz), whose module wrapper is built by hand.
 */
const handOverPlugin = {
  name: 'oz-hand-over',
  setup(build: { onResolve: Function; onLoad: Function }) {
    build.onResolve({ filter: /^\.\/program\.js$/ }, (args: { importer: string }) =>
      args.importer.endsWith('src/cli/main.ts') ? { path: 'hand-over', namespace: 'oz-hand-over' } : undefined,
    );
    build.onResolve({ filter: /.*/, namespace: 'oz-hand-over' }, (args: { path: string }) => ({ path: args.path, external: true }));
    build.onLoad({ filter: /.*/, namespace: 'oz-hand-over' }, () => ({
      contents: `export async function runProgram() { await require('./hand-over.cjs')(); }`,
      loader: 'js',
    }));
  },
};

/**
 * dist/cli.cjs.v8cache: V8's code cache for the hot path, taken from a real `issue-token` run
 * so that it holds the functions that run compiled (bin/oz writes it when OZ_WRITE_CODE_CACHE
 * names the file). The first run creates the throwaway key; the second is the steady state, in
 * the run context a platform sets, and in the gcp format, whose path holds nearly all of the
 * plain one's (the response and its output file besides).
 */
function writeCodeCache(): void {
  const home = mkdtempSync(join(tmpdir(), 'oz-code-cache-'));
  try {
    const env = { PATH: process.env.PATH ?? '', HOME: home, ...rehearsalEnv(home) };
    spawnSync(process.execPath, ['bin/oz', 'federate', 'issue-token', '--audience', 'code-cache'], { env, stdio: 'ignore' });
    const args = ['bin/oz', 'federate', 'issue-token', '--format', 'gcp'];
    const r = spawnSync(process.execPath, args, { env: { ...env, OZ_WRITE_CODE_CACHE: 'dist/cli.cjs.v8cache' }, stdio: 'ignore' });
    if (r.status !== 0) console.warn('warning: no code cache for dist/cli.cjs: the issue-token run failed');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

const common: Options = {
  platform: 'node',
  target: 'node20',
  minify: false,
  sourcemap: false,
  clean: false,
  outDir: 'dist',
  define: { __OZ_VERSION__: JSON.stringify(version) },
  // Bundle the runtime dependencies too: resolving packages from node_modules at start-up
  // costs more than reading one larger file.
  noExternal: [/.*/],
};

export default defineConfig([
  {
    ...common,
    entry: { main: 'src/cli/main.ts' },
    // One CommonJS file, as the single executable is: loaded as split ESM chunks, the program
    // now and then never finished loading (a start that hung with nothing printed, a few times in
    // thousands of runs), which the single executable, one CommonJS bundle, never did.
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    splitting: false,
    // As for the hot build: rollup's pass would hoist every require() to the top of the file,
    // loading node:http, TLS and the rest for `oz issuer jwks`.
    treeshake: false,
    esbuildPlugins: [vendorPlugin],
  },
  {
    ...common,
    entry: { cli: 'src/cli/main.ts' },
    format: ['cjs'],
    // Every byte of this file is read and hashed, and its code cache loaded, on every refresh:
    // minified, it is about half the size.
    minify: true,
    outExtension: () => ({ js: '.cjs' }),
    splitting: false,
    // tsup's tree-shaking pass (rollup) hoists every require() to the top of the file, which
    // would load every built-in the file mentions; esbuild's own keeps them where they are.
    treeshake: false,
    shims: true,
    esbuildPlugins: [handOverPlugin, vendorPlugin],
    async onSuccess() {
      writeFileSync('dist/hand-over.cjs', "'use strict';\nmodule.exports = () => require('./main.cjs');\n");
      // The build's identity, which bin/oz matches against the code cache's first line.
      const built = readFileSync('dist/cli.cjs', 'utf8');
      writeFileSync('dist/cli.cjs', `${built}\n//# oz-build ${createHash('sha256').update(built).digest('hex')}\n`);
      writeCodeCache();
      // Every KB of this file is compiled on every refresh (about 20 µs per KB here). If
      // commander or jose shows up, main.ts stopped importing './program.js' by that name, or
      // something the hot path imports reaches them: the build fails rather than ship that.
      const hot = readFileSync('dist/cli.cjs', 'utf8');
      const heavy = /node_modules\/(commander|jose)\//.exec(hot);
      if (heavy || hot.length > 150_000) {
        throw new Error(
          `dist/cli.cjs is ${Math.round(hot.length / 1024)} KB${heavy ? ` and holds ${heavy[1]}` : ''}: the hot path must load neither commander nor jose (see tsup.config.ts)`,
        );
      }
    },
  },
  {
    ...common,
    entry: { [VENDOR.undici]: 'src/vendor/undici.cjs', [VENDOR.chalk]: 'node_modules/chalk/source/index.js' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    splitting: false,
    treeshake: false,
  },
]);
