import { startupSnapshot } from 'node:v8';
import { runningAsSingleExecutable } from './executable.js';

/**
 * Entry of the single executable, dist/sea/oz (scripts/build-sea.mjs). Its bundle holds the
 * whole CLI, and Node runs it once, at build time, to take a V8 startup snapshot; each start of
 * the executable then deserialises that heap instead of bootstrapping Node and compiling oz.
 *
 * What is evaluated here is frozen into the snapshot, so it must not read anything that belongs
 * to one run (argv, the environment, the clock, stdio, the key). The modules below only define
 * functions and constants when they are loaded. main.ts reads argv at its top level, so it is
 * loaded by the deserialised main function, at run time. node:http and node:tls cannot be in a
 * Node 20 snapshot at all: undici and the server are loaded by the commands that use them.
 */
function warm(): Promise<unknown> {
  // process.stdout is a pipe when Google's libraries or `$(oz …)` read it, and Node builds a
  // pipe's stream from node:net: loading it here spares compiling it at each start.
  require('node:net');
  return Promise.all([
    import('./flags.js'),
    import('./output.js'),
    import('./issue-token.js'),
    import('./prepare.js'),
    import('../sources/embedded.js'),
  ]);
}

function run(): void {
  // node:sea is loaded here, not above: Node has not vetted it for snapshots.
  if ((require('node:sea') as typeof import('node:sea')).isSea()) runningAsSingleExecutable(process.execPath);
  void import('./main.js');
}

if (startupSnapshot?.isBuildingSnapshot()) {
  void warm();
  startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
