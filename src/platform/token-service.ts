import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { signJwtAsync } from '../core/jws.js';
import { MAX_DURATION_SECONDS } from '../core/duration.js';
import { claimValueProblem, DEFAULT_TOKEN_SECONDS, IDENTITY_TOKEN_TYPE } from '../core/claims.js';
import { formattedIdentityClaims, tokenLengthProblem } from '../core/claim-formats.js';
import { grantFormats } from './grant-mint.js';
import { grantedLifetime, verifyGrant, type GrantClaims, type GrantVerdict } from './grant-verify.js';
import { RUN_EXPIRED_PROBLEM, RUN_TOKEN_AUDIENCE, type TokenRequestBody, type TokenResponseBody } from '../core/wire.js';
import type { KeyCache } from './key-cache.js';
import { RateLimiter } from './rate-limit.js';
import { DEFAULT_RATE_LIMIT } from './settings.js';
import { annotateLog, sendJson, sendProblem, type Route } from './server.js';
import { ok, problem, quote, type Parsed } from '../core/errors.js';

/**
 * POST /v1/token: a run token in (Authorization: Bearer), an identity token out, carrying the
 * grant's claims and the requested audience. Every refusal is RFC 9457 problem+json.
 *
 * Per request the service parses the header and body, verifies the run token's signature
 * with a cached public key and signs on libuv's thread pool with a cached private key: no
 * file is read. Across requests it keeps the keys, rate-limit buckets and the run tokens that
 * verified (see grantVerifier); never a token it issued.
 */

export const MAX_BODY_BYTES = 64 * 1024;
/** Bursts of this many times the rate: a run starting up asks for a few tokens at once. */
export const RATE_LIMIT_BURST_FACTOR = 3;
/**
 * Signatures queued on the thread pool at most. Each is a fraction of a millisecond, so this
 * many is a few tens of milliseconds of work; past it a request is answered 503 at once, rather
 * than every request waiting behind a queue that a flood of valid requests could grow without end.
 */
export const DEFAULT_MAX_SIGNINGS_IN_FLIGHT = 128;

export interface TokenServiceOptions {
  /** The issuer the service signs as, and that run tokens must name. */
  issuer: () => string;
  /** The key store as the server holds it: grants are checked and tokens signed with it. */
  keys: KeyCache;
  now?: () => Date;
  /** When non-empty, the only audiences tokens are issued for. */
  allowedAudiences?: readonly string[];
  /** Requests per second per run grant; 0 turns the limit off. */
  rateLimit?: number;
  maxSigningsInFlight?: number;
  log?: (line: string) => void;
}

/** Verified run tokens remembered at most; past it the memory starts over. */
const MAX_VERIFIED_GRANTS = 10_000;

/**
 * verifyGrant, remembering run tokens that verified by their exact text: a run asks for many
 * tokens with one grant, and checking its signature again each time is a good part of a
 * request's work. Expiry is checked on every use, and the memory is dropped whenever the keys
 * are reloaded. It holds the callers' credentials, never a token it issued.
 */
function grantVerifier(keys: KeyCache, issuer: () => string): (bearer: string, now: Date) => GrantVerdict {
  let verified = new Map<string, GrantClaims>();
  let version = -1;
  return (bearer, now) => {
    const v = keys.version();
    if (v !== version) {
      verified = new Map();
      version = v;
    }
    const known = verified.get(bearer);
    if (known && Math.floor(now.getTime() / 1000) < known.exp) return { ok: true, claims: known };
    verified.delete(bearer);
    const verdict = verifyGrant(bearer, { issuer: issuer(), now, keyFor: (kid) => keys.verificationKey(kid) });
    if (verdict.ok) {
      if (verified.size >= MAX_VERIFIED_GRANTS) verified = new Map();
      verified.set(bearer, verdict.claims);
    }
    return verdict;
  };
}

const BEARER_CHALLENGE = 'Bearer realm="oz"';
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="oz", error="invalid_token"';

export function tokenRoute(opts: TokenServiceOptions): Route {
  const now = opts.now ?? (() => new Date());
  const { keys } = opts;
  const verify = grantVerifier(keys, opts.issuer);
  const allowed = opts.allowedAudiences && opts.allowedAudiences.length > 0 ? new Set(opts.allowedAudiences) : undefined;
  const rate = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
  const limiter = rate > 0 ? new RateLimiter({ ratePerSecond: rate, burst: Math.max(1, rate * RATE_LIMIT_BURST_FACTOR) }) : undefined;
  const maxSignings = opts.maxSigningsInFlight ?? DEFAULT_MAX_SIGNINGS_IN_FLIGHT;
  let signing = 0;
  // Fail at start-up, not on the first request, if the key store is unusable.
  keys.signingKey();

  return {
    methods: ['POST'],
    async handle(req: IncomingMessage, res: ServerResponse) {
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) return tooLarge(res);
      if (!isJson(req.headers['content-type'])) {
        return sendProblem(res, {
          status: 415,
          title: 'Unsupported Media Type',
          detail: 'the request body must be application/json',
          headers: { accept: 'application/json' },
        });
      }
      const bearer = bearerToken(req.headers.authorization);
      if (bearer === undefined) {
        return sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          detail: 'send the run token (OZ_RUN_TOKEN) as "Authorization: Bearer <run token>"',
          headers: { 'www-authenticate': BEARER_CHALLENGE },
        });
      }
      const at = now();
      const verdict = verify(bearer, at);
      if (!verdict.ok) {
        return sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          detail: verdict.problem,
          ...(verdict.expired ? { type: RUN_EXPIRED_PROBLEM } : {}),
          headers: { 'www-authenticate': INVALID_TOKEN_CHALLENGE },
        });
      }
      const grant = verdict.claims;
      const runLabel = `run_id=${logValue(grant.run_id)}`;
      annotateLog(res, runLabel);
      if (limiter) {
        const d = limiter.take(grant.jti, at.getTime());
        if (!d.ok) {
          return sendProblem(res, {
            status: 429,
            title: 'Too Many Requests',
            detail: `this run asks for tokens faster than ${rate} a second`,
            headers: { 'retry-after': String(d.retryAfterSeconds) },
          });
        }
      }
      const body = await readBody(req, MAX_BODY_BYTES);
      if (body === undefined) return tooLarge(res);
      const request = parseTokenRequest(body);
      if (!request.ok) return sendProblem(res, { status: 400, title: 'Bad Request', detail: request.problem });
      const parsed = request.value;
      if (allowed && !allowed.has(parsed.audience)) {
        return sendProblem(res, { status: 403, title: 'Forbidden', detail: `audience ${quote(parsed.audience)} is not in this token service's allow-list` });
      }
      annotateLog(res, `${runLabel} aud=${logValue(parsed.audience)}`);
      const signedAt = now();
      const lifetime = grantedLifetime(parsed.durationSeconds, grant, signedAt);
      if (lifetime < 1) {
        return sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          type: RUN_EXPIRED_PROBLEM,
          detail: `the run's grant expired at ${new Date(grant.exp * 1000).toISOString()}: no token can be issued for this run`,
          headers: { 'www-authenticate': INVALID_TOKEN_CHALLENGE },
        });
      }
      if (signing >= maxSignings) {
        return sendProblem(res, {
          status: 503,
          title: 'Service Unavailable',
          detail: `${signing} tokens are being signed already; ask again in a second`,
          headers: { 'retry-after': '1' },
        });
      }
      // grant-run checked what the grant fixes; the audience can still break a limit (tags go only to STS).
      const shaped = formattedIdentityClaims(grant, { issuer: opts.issuer(), audience: parsed.audience, lifetimeSeconds: lifetime, now: signedAt, jti: randomUUID() }, grantFormats(grant));
      if (!shaped.ok) return sendProblem(res, { status: 422, title: 'Unprocessable Content', detail: `this run's grant gives no token for ${quote(parsed.audience)}: ${shaped.problem}` });
      const claims = shaped.value;
      const key = keys.signingKey();
      signing++;
      let token: string;
      try {
        token = await signJwtAsync({ alg: key.alg, kid: key.kid, typ: IDENTITY_TOKEN_TYPE }, claims, key.privateKey);
      } finally {
        signing--;
      }
      const tooLong = tokenLengthProblem(token, parsed.audience);
      if (tooLong) return sendProblem(res, { status: 422, title: 'Unprocessable Content', detail: tooLong });
      const answer: TokenResponseBody = { token, expires_at: new Date(claims.exp * 1000).toISOString() };
      sendJson(res, 200, answer, { 'cache-control': 'no-store' });
    },
  };
}

/** A value for the access log, quoted; plain printable ASCII skips quote()'s escaping work. */
function logValue(v: string): string {
  return v.length <= 64 && /^[\x20-\x7e]*$/.test(v) ? JSON.stringify(v) : quote(v, 64);
}

function tooLarge(res: ServerResponse): void {
  // The rest of an oversized body is not worth reading: answer, then close the connection.
  sendProblem(res, {
    status: 413,
    title: 'Content Too Large',
    detail: `the request body is larger than ${MAX_BODY_BYTES} bytes`,
    headers: { connection: 'close' },
  });
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

/** The credentials of an `Authorization: Bearer` header (RFC 6750), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return m ? m[1] : undefined;
}

/** The body, or undefined once it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export interface TokenRequest {
  audience: string;
  durationSeconds: number;
}

/** The JSON body `{"audience": "...", "duration_seconds": N}`, or why it is not acceptable. */
export function parseTokenRequest(body: Buffer): Parsed<TokenRequest> {
  if (body.length === 0) return problem('the request body is empty: send {"audience": "...", "duration_seconds": N}');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return problem('the request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return problem('the request body must be a JSON object');
  const { audience, duration_seconds: duration } = value as Partial<Record<keyof TokenRequestBody, unknown>>;
  const audienceProblem = checkAudience(audience);
  if (audienceProblem) return problem(audienceProblem);
  let durationSeconds = DEFAULT_TOKEN_SECONDS;
  if (duration !== undefined) {
    if (typeof duration !== 'number' || !Number.isSafeInteger(duration) || duration < 1 || duration > MAX_DURATION_SECONDS) {
      return problem(`"duration_seconds" must be a whole number of seconds from 1 to ${MAX_DURATION_SECONDS}`);
    }
    durationSeconds = duration;
  }
  return ok({ audience: audience as string, durationSeconds });
}

function checkAudience(audience: unknown): string | undefined {
  if (audience === undefined) return 'missing "audience": the "aud" the relying party expects';
  if (typeof audience !== 'string') return '"audience" must be a string';
  const problem = claimValueProblem(audience);
  if (problem) return `invalid "audience" ${quote(audience)}: ${problem}`;
  if (audience === RUN_TOKEN_AUDIENCE) return `"audience" ${quote(audience)} is reserved for run tokens`;
  return undefined;
}
