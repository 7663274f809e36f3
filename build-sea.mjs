#!/usr/bin/env node
// `npm run build:sea`: dist/sea/oz, oz as one executable file that needs no Node installed.
//
// Node's single-executable applications: a copy of this machine's node binary with a blob
// injected into it (postject, from npm), which Node finds at start through a fuse in the
// binary. The blob holds a V8 startup snapshot taken after running src/cli/sea.ts, a bundle
// of the whole CLI, so a start deserialises a heap in which oz is already loaded. Nothing is
// downloaded: the executable is the node that runs this script.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { inject } from 'postject';

const ROOT = dirname(fileURLToPath(import.meta.url));
const OUT = join(ROOT, 'dist', 'sea', 'oz');
// Written into node's binary; a Node built without single-executable support lacks it.
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

class BuildFailure extends Error {}

function fatal(message) {
  console.error(`build-sea: ${message}`);
  process.exit(1);
}

function die(message) {
  throw new BuildFailure(message);
}

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const [major, minor] = process.versions.node.split('.').map(Number);
// useSnapshot for single executables and node:sea's isSea() are both in 20.12.
if (major < 20 || (major === 20 && minor < 12)) fatal(`Node ${process.version} cannot build it: use Node 20.12 or later`);
if (!readFileSync(process.execPath).includes(`${FUSE}:0`)) fatal(`${process.execPath} has no single-executable fuse (${FUSE})`);

// Beside the result, so that the finished file is renamed into place on one file system.
mkdirSync(dirname(OUT), { recursive: true });
const work = mkdtempSync(join(dirname(OUT), '.build-'));
try {
  const ASSETS = join(ROOT, 'src/cli/sea-assets.ts');
  // undici and chalk are assets of their own (src/cli/sea-assets.ts), compiled when first used;
  // undici with the flag the other builds set once it is loaded (see tsup.config.ts: V8 would
  // otherwise compile its WebAssembly parser twice before exiting).
  const vendorFromAssets = {
    name: 'oz-sea-vendor',
    setup(b) {
      b.onResolve({ filter: /^(undici|chalk)$/ }, (args) =>
        args.importer.includes('/node_modules/') ? undefined : { path: args.path, namespace: 'oz-sea-vendor' },
      );
      b.onLoad({ filter: /.*/, namespace: 'oz-sea-vendor' }, (args) => ({
        contents:
          `module.exports = require(${JSON.stringify(ASSETS)}).bundled(${JSON.stringify(args.path)});` +
          (args.path === 'undici' ? "\nrequire('node:v8').setFlagsFromString('--liftoff-only');" : ''),
        resolveDir: ROOT,
        loader: 'js',
      }));
    },
  };
  // In the snapshot, main.ts's full program is the `program` asset, run from the start.
  const programFromAssets = {
    name: 'oz-sea-program',
    setup(b) {
      b.onResolve({ filter: /^\.\/program\.js$/ }, (args) =>
        args.importer.endsWith('src/cli/main.ts') ? { path: 'program', namespace: 'oz-sea-program' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'oz-sea-program' }, () => ({
        contents: `import { bundled } from ${JSON.stringify(ASSETS)};\nexport async function runProgram() { bundled('program'); }\n`,
        resolveDir: ROOT,
        loader: 'ts',
      }));
    },
  };
  // One CommonJS file each: inside a snapshot, and in what its main function compiles,
  // require() reaches built-in modules only.
  const bundle = (entry, plugins, minify) =>
    build({
      config: false,
      silent: true,
      entry,
      outDir: work,
      format: ['cjs'],
      outExtension: () => ({ js: '.cjs' }),
      platform: 'node',
      target: 'node20',
      splitting: false,
      // esbuild keeps each require() where it is; rollup's pass would hoist them all to the top.
      treeshake: false,
      sourcemap: false,
      minify,
      clean: false,
      dts: false,
      noExternal: [/.*/],
      define: { __OZ_VERSION__: JSON.stringify(version) },
      // tsup's default writes require('node:sea') as require('sea'), which does not exist: `sea`
      // is one of the built-ins Node serves only under its node: name.
      removeNodeProtocol: false,
      esbuildPlugins: plugins,
      metafile: true,
    });
  await bundle({ oz: join(ROOT, 'src/cli/sea.ts') }, [programFromAssets, vendorFromAssets], true);

  // The snapshot is deserialised at every start: only the hot path belongs in it.
  const meta = JSON.parse(readFileSync(join(work, 'metafile-cjs.json'), 'utf8'));
  for (const pkg of ['commander', 'jose', 'undici', 'chalk', '@bufbuild']) {
    if (Object.keys(meta.inputs).some((f) => f.includes(`node_modules/${pkg}/`))) die(`the snapshot's bundle holds ${pkg}: it belongs in an asset (src/cli/sea-assets.ts)`);
  }

  await bundle({ program: join(ROOT, 'src/cli/sea-program.ts') }, [vendorFromAssets], true);
  await bundle({ undici: join(ROOT, 'src/vendor/undici.cjs'), chalk: join(ROOT, 'node_modules/chalk/source/index.js') }, [], true);
  // A dynamic import() left in a bundle would fail at run time: neither a snapshot nor a script
  // compiled by node:vm has a module loader. (esbuild writes the specifier in double quotes.)
  for (const file of ['oz.cjs', 'program.cjs']) {
    const left = readFileSync(join(work, file), 'utf8').match(/(?<![\w.$])import\("[^"]*"\)/g);
    if (left) die(`${file} still imports at run time: ${[...new Set(left)].join(', ')}`);
  }

  const assets = { 'program.cjs': join(work, 'program.cjs'), 'undici.cjs': join(work, 'undici.cjs'), 'chalk.cjs': join(work, 'chalk.cjs') };
  /** node with the blob injected, at `exe`: the snapshot taken from oz.cjs, and `assets`. */
  const makeExecutable = async (exe, assets) => {
    const blob = join(work, 'oz.blob');
    const config = join(work, 'sea-config.json');
    writeFileSync(
      config,
      JSON.stringify({
        main: join(work, 'oz.cjs'),
        output: blob,
        useSnapshot: true,
        assets,
        // Google's libraries parse stderr with stdout in --format gcp: not even this warning.
        disableExperimentalSEAWarning: true,
      }),
    );
    const made = spawnSync(process.execPath, ['--experimental-sea-config', config], { cwd: work, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    if (made.status !== 0) die(`the snapshot failed:\n${made.stderr}`);
    // Node warns about built-ins it has not vetted for snapshots; one it refuses ends the build above.
    for (const line of made.stderr.split('\n')) if (/^warning: |Warning: /.test(line) && !/ExperimentalWarning/.test(line)) console.warn(line);
    copyFileSync(process.execPath, exe);
    chmodSync(exe, 0o755);
    // postject's LIEF prints harmless notes about ELF section names; keep its output for failures.
    const log = [];
    const { warn, log: info } = console;
    console.warn = console.log = (...a) => log.push(a.join(' '));
    try {
      await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE });
    } catch (e) {
      console.warn = warn;
      console.log = info;
      die(`postject failed: ${e.message}\n${log.join('\n')}`);
    }
    console.warn = warn;
    console.log = info;
  };

  // Twice: the first executable runs the program once (a command, which builds the whole
  // commander program) to write V8's code cache for it (sea-assets.ts, OZ_WRITE_CODE_CACHE),
  // and the second carries that cache as one more asset.
  const exe = join(work, 'oz');
  await makeExecutable(exe, assets);
  const cache = join(work, 'program.v8cache');
  const cacheEnv = { PATH: '/usr/bin:/bin', HOME: work, OZ_DATA_DIR: join(work, 'cache-data'), OZ_RUN_ID: 'code-cache', OZ_WRITE_CODE_CACHE: cache };
  const cached = spawnSync(exe, ['federate', 'whoami'], { encoding: 'utf8', env: cacheEnv });
  if (cached.status !== 0 || !existsSync(cache)) die(`the first build cannot run the program: ${cached.stderr.trim()}`);
  await makeExecutable(exe, { ...assets, 'program.v8cache': cache });

  const check = spawnSync(exe, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  if (check.stdout.trim() !== version) die(`the built executable says ${JSON.stringify(check.stdout.trim() || check.stderr.trim())}, not ${version}`);
  // Whatever the snapshot froze must not make two runs alike (src/cli/sea.ts, rehearse()).
  const env = { PATH: '/usr/bin:/bin', HOME: work, OZ_DATA_DIR: join(work, 'data'), OZ_RUN_ID: 'build-check', OZ_SUBJECT: 'build-check' };
  const jtis = [0, 1].map(() => {
    const r = spawnSync(exe, ['federate', 'issue-token', '--audience', 'build-check', '--format', 'json'], { encoding: 'utf8', env });
    if (r.status !== 0) die(`the built executable cannot issue a token: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout).claims.jti;
  });
  if (jtis[0] === jtis[1]) die(`two runs of the built executable signed the same jti (${jtis[0]}): the snapshot holds a random pool`);
  renameSync(exe, OUT);
  console.log(`dist/sea/oz: oz ${version}, ${(statSync(OUT).size / 2 ** 20).toFixed(1)} MiB (Node ${process.version}, startup snapshot)`);
} catch (e) {
  if (!(e instanceof BuildFailure)) throw e;
  console.error(`build-sea: ${e.message}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
