import type { Env } from '../../core/settings.js';
import { OzError } from '../../core/errors.js';
import { debug } from '../../core/debug.js';
import { decodeJwt } from '../../core/jwt.js';
import { RUN_EXPIRED_PROBLEM } from '../../core/wire.js';
import { displayUrl, readRemoteConfig, type RemoteConfig } from './remote-config.js';
import {
  MAX_ATTEMPTS,
  backoffDelayMs,
  describeHttpFailure,
  describeNetworkError,
  isRetryableStatus,
  parseProblem,
  parseRetryAfter,
  type ProblemSummary,
} from './retry.js';
import { transportFor } from '../../http/select.js';
import { USER_AGENT, type HttpRequest, type Transport } from '../../http/transport.js';
import type { IssueRequest, IssuedToken } from './types.js';

export { CONNECT_TIMEOUT_MS } from '../../http/transport.js';

/**
 * The remote token source: a run token in, an identity token out, from the token service.
 * The run's claims are the grant's; nothing in this environment but the run token and where
 * to send it has a say. Built to answer within OZ_TOKEN_TIMEOUT whatever the network does,
 * because Google's libraries kill an executable credential source after 30 s.
 */

/** One attempt's wait for an answer; the overall bound may cut it shorter. */
export const ATTEMPT_TIMEOUT_MS = 6000;
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface RemoteDeps {
  /** Default: node:http, or undici's ProxyAgent when a proxy applies to the token URL. */
  transport?: Transport;
  random?: () => number;
  /** Monotonic milliseconds. */
  clock?: () => number;
}

type Outcome =
  | { kind: 'ok'; issued: IssuedToken }
  /** `reason` is short ("HTTP 503 Service Unavailable"); `what` is the whole sentence. */
  | { kind: 'retry'; what: string; reason: string; retryAfterMs?: number; cause?: unknown }
  | { kind: 'fail'; error: OzError };

export async function issueRemote(env: Env, now: Date, req: IssueRequest, deps: RemoteDeps = {}): Promise<IssuedToken> {
  const config = readRemoteConfig(env);
  const exp = config.grant.exp;
  if (typeof exp === 'number' && exp <= now.getTime() / 1000) {
    // Known without asking: the grant's expiry is the run's deadline.
    throw new OzError('run_expired', `the run's grant expired at ${new Date(exp * 1000).toISOString()}: no token can be issued for this run (OZ_RUN_TOKEN)`);
  }
  return requestToken(config, now, req, {
    transport: deps.transport ?? (await transportFor(config.proxy)),
    random: deps.random ?? Math.random,
    clock: deps.clock ?? monotonicMs,
  });
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/**
 * Attempts until one succeeds, one is refused for good, MAX_ATTEMPTS have failed, or the
 * overall bound is reached; the bound also cuts short an attempt or a wait in progress.
 */
async function requestToken(config: RemoteConfig, now: Date, req: IssueRequest, deps: Required<RemoteDeps>): Promise<IssuedToken> {
  const url = displayUrl(config.tokenUrl);
  const started = deps.clock();
  const deadline = started + config.timeoutMs;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), config.timeoutMs);
  const body = JSON.stringify({ audience: req.audience, duration_seconds: req.requestedSeconds });
  let attempts = 0;
  let last: Extract<Outcome, { kind: 'retry' }> | undefined;
  const spent = () => `${attempts} attempt${attempts === 1 ? '' : 's'} in ${((deps.clock() - started) / 1000).toFixed(1)}s`;
  const timedOut = () =>
    new OzError(
      'remote_unavailable',
      `the token service at ${url} did not answer within ${config.timeoutMs / 1000}s (OZ_TOKEN_TIMEOUT; ${spent()}${last ? `, last: ${last.reason}` : ''})`,
      { cause: last?.cause },
    );
  try {
    for (;;) {
      const remaining = deadline - deps.clock();
      if (remaining <= 0 || abort.signal.aborted) throw timedOut();
      attempts++;
      const sent = deps.clock();
      debug(`POST ${url} (attempt ${attempts} of at most ${MAX_ATTEMPTS}, audience ${JSON.stringify(req.audience)}, ${config.proxy ? `through the proxy in ${config.proxy.variable}` : 'direct'})`);
      // Raced against the bound as well as handed its signal: whatever a transport does with
      // the signal, the bound is kept.
      const outcome = await Promise.race([
        attemptOnce(config, req, body, deps.transport, abort.signal, Math.min(ATTEMPT_TIMEOUT_MS, remaining), () => now.getTime() + deps.clock() - started),
        whenAborted(abort.signal),
      ]);
      const took = `${deps.clock() - sent} ms`;
      if (outcome.kind === 'ok') {
        debug(`the token service answered HTTP 200 in ${took}: a token for ${JSON.stringify(req.audience)} until ${outcome.issued.expiresAt.toISOString()}`);
        return outcome.issued;
      }
      if (outcome.kind === 'fail') {
        debug(`attempt ${attempts} failed for good in ${took}: ${outcome.error.message}`);
        throw outcome.error;
      }
      debug(`attempt ${attempts} failed in ${took}: ${outcome.reason}`);
      const lastBefore = last;
      last = outcome;
      if (abort.signal.aborted) {
        // The attempt was cut off by the bound: its own error says only "aborted".
        last = lastBefore;
        throw timedOut();
      }
      if (attempts >= MAX_ATTEMPTS) throw new OzError('remote_unavailable', `${outcome.what} (${spent()})`, { cause: outcome.cause });
      const wait = outcome.retryAfterMs ?? backoffDelayMs(attempts - 1, deps.random);
      if (deps.clock() + wait >= deadline) {
        if (outcome.retryAfterMs === undefined) throw timedOut();
        const after = `it asked to retry after ${Math.ceil(wait / 1000)}s, past the ${config.timeoutMs / 1000}s bound (OZ_TOKEN_TIMEOUT)`;
        throw new OzError('remote_unavailable', `${outcome.what} (${spent()}; ${after})`, { cause: outcome.cause });
      }
      if (attempts === 1) req.onRetry?.(outcome.what, config.timeoutMs / 1000);
      debug(`retrying in ${wait} ms${outcome.retryAfterMs !== undefined ? ' (Retry-After)' : ''}`);
      await sleep(wait, abort.signal);
    }
  } finally {
    clearTimeout(timer);
    // A connection still being made (a stalled TLS handshake) would keep the process alive.
    if (abort.signal.aborted) deps.transport.close();
  }
}

function whenAborted(signal: AbortSignal): Promise<Outcome> {
  const aborted: Outcome = { kind: 'retry', what: 'aborted', reason: 'aborted' };
  return new Promise((resolve) => {
    if (signal.aborted) resolve(aborted);
    else signal.addEventListener('abort', () => resolve(aborted), { once: true });
  });
}

async function attemptOnce(
  config: RemoteConfig,
  req: IssueRequest,
  body: string,
  transport: Transport,
  signal: AbortSignal,
  timeoutMs: number,
  nowMs: () => number,
): Promise<Outcome> {
  const url = displayUrl(config.tokenUrl);
  let answer;
  try {
    answer = await transport.request(tokenRequest(config, body, signal, timeoutMs));
  } catch (e) {
    const reason = describeNetworkError(e);
    return { kind: 'retry', what: `cannot reach the token service at ${url}: ${reason}`, reason, cause: e };
  }
  const { status, headers, body: text } = answer;
  if (text === undefined) {
    return { kind: 'fail', error: new OzError('remote_unavailable', `the token service at ${url} answered HTTP ${status} with more than ${MAX_RESPONSE_BYTES} bytes`) };
  }
  if (status === 200) return parseAnswer(text, req, url, nowMs());
  const problem = parseProblem(text, header(headers['content-type']));
  const failure = describeHttpFailure(status, problem);
  if (isRetryableStatus(status)) {
    const what = status === 429 ? `the token service at ${url} is rate limiting this run: ${failure}` : `the token service at ${url} failed: ${failure}`;
    const retryAfterMs = parseRetryAfter(headers['retry-after'], Date.now());
    return { kind: 'retry', what, reason: failure, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  return { kind: 'fail', error: refusal(status, problem, failure, url) };
}

/** One `POST /v1/token` with the run token, as every caller of the token service sends it. */
export function tokenRequest(config: RemoteConfig, body: string, signal: AbortSignal, timeoutMs: number): HttpRequest {
  return {
    url: config.tokenUrl,
    method: 'POST',
    signal,
    answerTimeoutMs: timeoutMs,
    maxBytes: MAX_RESPONSE_BYTES,
    headers: {
      authorization: `Bearer ${config.runToken}`,
      'content-type': 'application/json',
      accept: 'application/json, application/problem+json',
      'user-agent': USER_AGENT,
    },
    body,
  };
}

function refusal(status: number, problem: ProblemSummary, failure: string, url: string): OzError {
  if (status === 401 && problem.type === RUN_EXPIRED_PROBLEM) {
    return new OzError('run_expired', `the token service at ${url} says the run is over: ${failure}`);
  }
  if (status >= 400 && status < 500) {
    const what = status === 401 ? 'refused the run token' : 'refused the request';
    return new OzError('remote_denied', `the token service at ${url} ${what}: ${failure}`);
  }
  // 1xx/3xx: a redirect is not followed, since it would carry the run token elsewhere.
  return new OzError('remote_unavailable', `the token service at ${url} answered ${failure}, not a token (is OZ_TOKEN_URL right?)`);
}

function parseAnswer(text: string, req: IssueRequest, url: string, nowMs: number): Outcome {
  const bad = (why: string) => ({ kind: 'fail' as const, error: new OzError('remote_unavailable', `the token service at ${url} answered with no usable token: ${why}`) });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return bad('the answer is not JSON');
  }
  const { token, expires_at: expiresAt } = (doc ?? {}) as Record<string, unknown>;
  if (typeof token !== 'string') return bad('no "token" in the answer');
  const decoded = decodeJwt(token);
  if (!decoded.ok) return bad(`"token" is not a JWT: ${decoded.problem}`);
  const claims = decoded.value.payload;
  // A token for another audience would be refused by the relying party with a murkier message.
  if (claims.aud !== req.audience) return bad(`the token's audience is not the one asked for (${JSON.stringify(req.audience)})`);
  // The token's own exp is what relying parties enforce; expires_at is the service's word for it.
  const exp = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : typeof expiresAt === 'string' ? new Date(expiresAt) : undefined;
  if (exp === undefined || Number.isNaN(exp.getTime())) return bad('the token has no expiry');
  // Printed, it would fail at the relying party; refused, the caller retries or reports.
  if (exp.getTime() <= nowMs) return bad(`the token expired at ${exp.toISOString()}, before it arrived`);
  return { kind: 'ok', issued: { token, expiresAt: exp, claims: { ...claims } } };
}

export function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
