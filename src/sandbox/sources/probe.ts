import type { Env } from '../../core/settings.js';
import { debug } from '../../core/debug.js';
import { displayUrl, readRemoteConfig } from './remote-config.js';
import { header, tokenRequest } from './remote.js';
import { rejectWhenAborted } from '../../http/transport.js';
import { describeHttpFailure, describeNetworkError, parseProblem, type ProblemSummary } from './retry.js';
import { transportFor } from '../../http/select.js';

/** `oz doctor`'s look at the token service, kept apart from the token client that runs on every refresh. */

export type TokenServiceProbe =
  | { url: string; answered: true; status: number; problem: ProblemSummary; failure: string }
  | { url: string; answered: false; reason: string };

/**
 * One token request, no retry, for `oz doctor`: whether the token service answers and what it
 * makes of the run token. The caller picks an audience no relying party accepts, so that even
 * a token issued for it is worth nothing; the answer's body is never returned.
 */
export async function probeTokenService(env: Env, audience: string, timeoutMs: number): Promise<TokenServiceProbe> {
  const config = readRemoteConfig(env);
  const url = displayUrl(config.tokenUrl);
  const transport = await transportFor(config.proxy);
  const signal = AbortSignal.timeout(timeoutMs);
  debug(`POST ${url} (one probe, audience ${JSON.stringify(audience)}, ${config.proxy ? `through the proxy in ${config.proxy.variable}` : 'direct'})`);
  try {
    const answer = await Promise.race([
      transport.request(tokenRequest(config, JSON.stringify({ audience, duration_seconds: 60 }), signal, timeoutMs)),
      rejectWhenAborted(signal, timeoutMs),
    ]);
    debug(`the token service answered HTTP ${answer.status}`);
    const problem = answer.status === 200 ? {} : parseProblem(answer.body ?? '', header(answer.headers['content-type']));
    return { url, answered: true, status: answer.status, problem, failure: describeHttpFailure(answer.status, problem) };
  } catch (e) {
    if (signal.aborted) transport.close();
    return { url, answered: false, reason: describeNetworkError(e) };
  }
}
