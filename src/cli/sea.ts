import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { runningAsSingleExecutable } from './executable.js';
import { bundled } from './sea-assets.js';
import { rehearsalEnv } from './rehearsal.js';

/**
 * Entry of the single executable, dist/sea/oz (build-sea.mjs). Its bundle holds the hot path
 * (the rest of oz is in assets beside it, see sea-assets.ts), and Node runs it once, at build
 * time, to take a V8 startup snapshot; each start of the executable then deserialises that heap
 * instead of bootstrapping Node and compiling oz.
 *
 * What is evaluated here is frozen into the snapshot, so it must not read anything that belongs
 * to one run (argv, the environment, the clock, stdio, the key). The modules below only define
 * functions and constants when they are loaded. main.ts reads argv at its top level, so it is
 * loaded by the deserialised main function, at run time. node:http and node:tls cannot be in a
 * Node 20 snapshot at all: they are loaded by the commands that use them.
 */
function warm(): Promise<unknown> {
  // process.stdout is a pipe when Google's libraries or `$(oz …)` read it, and Node builds a
  // pipe's stream from node:net: loading it here spares compiling it at each start.
  require('node:net');
  return Promise.all([
    import('./spec.js'),
    import('./fast-args.js'),
    import('./output.js'),
    import('./run.js'),
    import('./issue-token.js'),
    import('./prepare.js'),
    import('../sandbox/sources/embedded.js'),
  ]);
}

/**
 * V8 keeps the compiled code of every function that has run in the snapshot, so the first call
 * at each start is not a compilation. This runs the hot path once, the way `issue-token` (in
 * each format) and `prepare` do, in the run context a platform sets, on a throwaway key in a
 * temporary directory that is gone before the snapshot is taken; what they print goes nowhere
 * and nothing they return is kept. A failure here fails the build.
 */
async function rehearse(): Promise<void> {
  const { ISSUE_TOKEN, PREPARE } = await import('./spec.js');
  const { parseFast, winningFormat } = await import('./fast-args.js');
  const { issueTokenCommand } = await import('./issue-token.js');
  const { prepare } = await import('../sandbox/prepare.js');
  const { renderEnv } = await import('../sandbox/shell.js');
  const dir = mkdtempSync(join(tmpdir(), 'oz-snapshot-'));
  // randomUUID() serves UUIDs from a buffer of random bytes that it fills once and keeps: filled
  // here, that buffer would be in the snapshot, and every run would sign the same jti. So the
  // rehearsal's UUIDs bypass it (the bundle looks randomUUID up on the module at each call).
  const uuid = crypto.randomUUID;
  crypto.randomUUID = () => uuid({ disableEntropyCache: true });
  // The commands print through process.stdout and stderr, which must not be opened here: the
  // snapshot would hold the build's streams. A sink stands in for both while they run.
  const streams = (['stdout', 'stderr'] as const).map((name) => [name, Object.getOwnPropertyDescriptor(process, name)] as const);
  const sink = { isTTY: false, write: () => true };
  for (const [name] of streams) Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => sink });
  try {
    const env = rehearsalEnv(dir);
    // The first call creates the key; every later one reads it, as every run after the first does.
    const calls = [
      ['--audience', 'sts.amazonaws.com'],
      ['--audience', 'sts.amazonaws.com'],
      ['--audience', 'api://AzureADTokenExchange', '--duration', '1h', '--format', 'json'],
      ['--format', 'gcp'],
    ];
    for (const args of calls) {
      winningFormat(args);
      const opts = parseFast(ISSUE_TOKEN, args);
      if (!opts) throw new Error(`cannot parse ${args.join(' ')}`);
      await issueTokenCommand(opts, env);
    }
    const prepareArgs = ['--aws-role-arn', 'arn:aws:iam::123456789012:role/r', '--gcp-project-number', '123', '--gcp-pool-id', 'pool-1', '--gcp-provider-id', 'prov-1', '--dir', join(dir, 'prepared')];
    const opts = parseFast(PREPARE, prepareArgs);
    if (!opts) throw new Error(`cannot parse ${prepareArgs.join(' ')}`);
    const prepared = await prepare(opts, { env, cwd: dir, now: new Date(), ozPath: '/oz', uid: process.getuid?.() });
    renderEnv(prepared.vars, 'sh');
  } finally {
    for (const [name, descriptor] of streams) if (descriptor) Object.defineProperty(process, name, descriptor);
    crypto.randomUUID = uuid;
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(): void {
  // As bin/oz does: the commands that run on every refresh start in the snapshot's hot path;
  // every other command, and any call for help, is the whole program (sea-assets.ts).
  const args = process.argv.slice(2);
  const hot = args[0] === 'federate' && (args[1] === 'issue-token' || args[1] === 'prepare') && !args.includes('--help') && !args.includes('-h');
  if (!hot) {
    bundled('program');
    return;
  }
  runningAsSingleExecutable();
  void import('./main.js');
}

if (startupSnapshot?.isBuildingSnapshot()) {
  void warm().then(rehearse);
  startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
