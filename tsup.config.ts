import { defineConfig, type Options } from 'tsup';
import { readFileSync, rmSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

/*
 * Start-up is what users feel (Google's libraries and shell init scripts run oz on every
 * refresh), so dist/ holds two builds of src/cli/main.ts; bench/README.md has the figures.
 *
 *   dist/cli.cjs        the hot path, one CommonJS file: `federate issue-token` and
 *                       `federate prepare` on either token source. CommonJS because Node 20's
 *                       ESM loader costs several ms per process (its own start, then a
 *                       resolution, a link and, for every built-in module imported, a facade
 *                       that touches all of its exports); one file because every extra file is
 *                       another resolve, read and compile.
 *   dist/main.js        the whole CLI as ESM, split per command into chunks; commander and jose
 *                       live only here. The hot path hands over to it (below) for everything
 *                       else: other commands, --help, arguments that need commander's messages.
 *   dist/vendor/*.cjs   undici and chalk, one CommonJS file each, shared by both builds and
 *                       loaded only when used (the remote token source; colour on a terminal).
 *
 * The hand-over: in the hot build, main.ts's `import('./program.js')` is replaced with a
 * module that imports dist/main.js, which runs main.ts again from the start, in a world of
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
 * every remote `issue-token` on 2 cores, for a CLI that parses one response. --liftoff-only
 * keeps the first compilation only. It applies to WebAssembly compiled after it is set, and
 * oz has no other WebAssembly on that path (`oz issuer serve` answers with node:http).
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
        (args.path === 'undici' ? "require('node:v8').setFlagsFromString('--liftoff-only');\n" : '') +
        `module.exports = require(${JSON.stringify(`./${VENDOR[args.path as keyof typeof VENDOR]}.cjs`)});`,
      loader: 'js',
    }));
  },
};

/** In the hot build, the commander program is dist/main.js, run from the start. */
const handOverPlugin = {
  name: 'oz-hand-over',
  setup(build: { onResolve: Function; onLoad: Function }) {
    build.onResolve({ filter: /^\.\/program\.js$/ }, (args: { importer: string }) =>
      args.importer.endsWith('src/cli/main.ts') ? { path: 'hand-over', namespace: 'oz-hand-over' } : undefined,
    );
    build.onResolve({ filter: /.*/, namespace: 'oz-hand-over' }, (args: { path: string }) => ({ path: args.path, external: true }));
    build.onLoad({ filter: /.*/, namespace: 'oz-hand-over' }, () => ({
      contents: `export async function runProgram() { await import('./main.js'); }`,
      loader: 'js',
    }));
  },
};

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
    format: ['esm'],
    splitting: true,
    treeshake: true,
    esbuildPlugins: [vendorPlugin],
    // commander is CommonJS and requires node built-ins, and the vendor files are reached
    // through require: an ESM bundle has no `require` of its own.
    banner: { js: "import { createRequire as __ozCreateRequire } from 'node:module'; const require = __ozCreateRequire(import.meta.url);" },
  },
  {
    ...common,
    entry: { cli: 'src/cli/main.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    splitting: false,
    // tsup's tree-shaking pass (rollup) hoists every require() to the top of the file, which
    // would load every built-in the file mentions; esbuild's own keeps them where they are.
    treeshake: false,
    shims: true,
    esbuildPlugins: [handOverPlugin, vendorPlugin],
    async onSuccess() {
      // Every KB of this file is compiled on every refresh (about 20 µs per KB here). If
      // commander or jose shows up, main.ts stopped importing './program.js' by that name.
      const hot = readFileSync('dist/cli.cjs', 'utf8');
      if (/node_modules\/(commander|jose)\//.test(hot) || hot.length > 150_000) {
        console.warn(`warning: dist/cli.cjs is ${Math.round(hot.length / 1024)} KB and holds more than the hot path; see tsup.config.ts`);
      }
    },
  },
  {
    ...common,
    entry: { [VENDOR.undici]: 'node_modules/undici/index.js', [VENDOR.chalk]: 'node_modules/chalk/source/index.js' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    splitting: false,
    treeshake: false,
  },
]);
