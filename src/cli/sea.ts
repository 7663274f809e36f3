import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { runningAsSingleExecutable } from './executable.js';

/**
 * Entry of the single executable, dist/sea/oz (build-sea.mjs). Its bundle holds the
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
 * at each start is not a compilation. This runs the hot path once, the way `issue-token` and
 * `prepare` do, on a throwaway key in a temporary directory that is gone before the snapshot
 * is taken; nothing it returns is kept. If it fails, the executable only starts a little slower.
 */
async function rehearse(): Promise<void> {
  const { ISSUE_TOKEN, PREPARE } = await import('./spec.js');
  const { parseFast, winningFormat } = await import('./fast-args.js');
  const { jsonResult } = await import('./issue-token.js');
  const { issueToken } = await import('../sandbox/sources/index.js');
  const { prepare } = await import('../sandbox/prepare.js');
  const { renderEnv } = await import('../sandbox/shell.js');
  const dir = mkdtempSync(join(tmpdir(), 'oz-snapshot-'));
  // randomUUID() serves UUIDs from a buffer of random bytes that it fills once and keeps: filled
  // here, that buffer would be in the snapshot, and every run would sign the same jti. So the
  // rehearsal's UUIDs bypass it (the bundle looks randomUUID up on the module at each call).
  const uuid = crypto.randomUUID;
  crypto.randomUUID = () => uuid({ disableEntropyCache: true });
  try {
    const env = { OZ_DATA_DIR: join(dir, 'data'), OZ_RUN_ID: 'snapshot', OZ_SUBJECT: 'snapshot', OZ_TEAMS: 'snapshot' };
    winningFormat(['--format', 'gcp']);
    parseFast(ISSUE_TOKEN, ['--audience', 'sts.amazonaws.com', '--duration', '1h', '--format', 'json']);
    parseFast(PREPARE, ['--aws-role-arn', 'arn:aws:iam::123456789012:role/r', '--dir', dir]);
    // Twice: the first creates the key, the second reads it, as every later call does.
    for (let i = 0; i < 2; i++) jsonResult(await issueToken(env, dir, new Date(), { audience: 'sts.amazonaws.com', requestedSeconds: 3600 }));
    const prepared = await prepare(
      { awsRoleArn: 'arn:aws:iam::123456789012:role/r', gcpProjectNumber: '123', gcpPoolId: 'pool-1', gcpProviderId: 'prov-1', dir: join(dir, 'prepared') },
      { env, cwd: dir, now: new Date(), ozPath: '/oz', uid: process.getuid?.() },
    );
    renderEnv(prepared.vars, 'sh');
  } catch (e) {
    console.warn(`warning: the snapshot holds no compiled hot path: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    crypto.randomUUID = uuid;
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(): void {
  // node:sea is loaded only when asked: Node has not vetted it for snapshots.
  runningAsSingleExecutable(() => ((require('node:sea') as typeof import('node:sea')).isSea() ? process.execPath : undefined));
  void import('./main.js');
}

if (startupSnapshot?.isBuildingSnapshot()) {
  void warm().then(rehearse);
  startupSnapshot.setDeserializeMainFunction(run);
} else {
  run();
}
