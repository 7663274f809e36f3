import type { Env } from '../../core/context.js';
import { runTokenOf } from './remote-config.js';
import { debug } from '../../core/debug.js';
import type { IssueRequest, IssuedToken } from './types.js';

export type { IssueRequest, IssuedToken } from './types.js';

/**
 * Where a token comes from: the token service when the platform gave the sandbox a run token
 * (the run's claims then come from that grant, never from this environment), otherwise the
 * embedded issuer. Each source is imported only when used, so the embedded path never loads
 * an HTTP client and the remote path never touches the data directory.
 */
export async function issueToken(env: Env, cwd: string, now: Date, request: IssueRequest): Promise<IssuedToken> {
  if (isRemoteMode(env)) {
    debug('token source: the token service (OZ_RUN_TOKEN is set)');
    const { issueRemote } = await import('./remote.js');
    return issueRemote(env, now, request);
  }
  debug('token source: the embedded issuer (OZ_RUN_TOKEN is not set)');
  const { issueEmbedded } = await import('./embedded.js');
  return issueEmbedded(env, cwd, now, request);
}

/** True when OZ_RUN_TOKEN is set: tokens come from the token service. */
export function isRemoteMode(env: Env): boolean {
  return runTokenOf(env) !== undefined;
}
