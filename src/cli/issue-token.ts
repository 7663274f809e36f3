import { OzError } from '../core/errors.js';
import { parseDurationSeconds } from '../core/duration.js';
import { parseFrom } from '../core/settings.js';
import { DEFAULT_TOKEN_SECONDS, validateAudience } from '../core/claims.js';
import { gcpTokenAudienceClaim } from '../sandbox/gcp.js';
import { writeFileAtomic } from '../core/securefile.js';
import { issueToken, type IssuedToken } from '../sandbox/sources/index.js';
import type { ISSUE_TOKEN, OptionsOf } from './spec.js';
import { note, out, retryNotice } from './output.js';
import { formatDuration } from '../core/duration.js';
import type { CapReason } from '../core/context.js';

export type IssueTokenOptions = OptionsOf<typeof ISSUE_TOKEN>;

const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

export async function issueTokenCommand(opts: IssueTokenOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const format = opts.format ?? 'jwt';
  if (format === 'gcp') return gcpResponse(opts, env);
  const asked = Date.now();
  const issued = await issue(opts, opts.audience, env);
  if (opts.duration !== undefined) {
    const capped = capNotice(issued, requestedSeconds(opts), asked);
    if (capped) note(capped);
  }
  out(format === 'jwt' ? `${issued.token}\n` : `${JSON.stringify(jsonResult(issued), null, 2)}\n`);
}

function requestedSeconds(opts: IssueTokenOptions): number {
  return opts.duration === undefined ? DEFAULT_TOKEN_SECONDS : parseFrom(parseDurationSeconds, opts.duration, '--duration', 'usage');
}

async function issue(opts: IssueTokenOptions, audience: string | undefined, env: NodeJS.ProcessEnv): Promise<IssuedToken> {
  return issueToken(env, process.cwd(), new Date(), { audience: validateAudience(audience), requestedSeconds: requestedSeconds(opts), onRetry: retryNotice() });
}

const CAP_REASONS: Record<Exclude<CapReason, 'requested'>, string> = {
  max_run_duration: "the run's maximum duration (OZ_MAX_RUN_DURATION)",
  deadline: "the time left before the run's deadline (OZ_RUN_DEADLINE)",
  max_token_lifetime: 'the one-day ceiling on a token (counted from the backdated iat)',
};

/** A shorter lifetime is not an error, but whoever asked for a longer one should hear of it. */
export function capNotice(issued: IssuedToken, requested: number, askedAtMs: number): string | undefined {
  const why = issued.lifetime;
  if (why !== undefined) {
    if (why.cappedBy === 'requested') return undefined;
    return `oz: the token is valid for ${formatDuration(why.seconds)}, not the ${formatDuration(requested)} asked for: capped by ${CAP_REASONS[why.cappedBy]}`;
  }
  // The token service does not say why; its exp says how long. A few seconds' leeway for the
  // two clocks, since the service's "now" is no earlier than when the request left.
  const granted = Math.floor((issued.expiresAt.getTime() - askedAtMs) / 1000);
  if (granted >= requested - CLOCK_LEEWAY_SECONDS) return undefined;
  return `oz: the token is valid for about ${formatDuration(Math.max(granted, 1))}, not the ${formatDuration(requested)} asked for: the token service capped it (the run's deadline or maximum duration)`;
}

const CLOCK_LEEWAY_SECONDS = 5;

export function jsonResult(issued: IssuedToken): { token: string; expires_at: string; claims: Record<string, unknown> } {
  return { token: issued.token, expires_at: issued.expiresAt.toISOString(), claims: issued.claims };
}

/**
 * The executable-sourced credential response that Google's libraries parse. Success is one
 * JSON document on stdout; a failure is too (written by the runner, run.ts); stderr stays
 * empty (main.ts has silenced it) because those libraries merge it into stdout.
 */
async function gcpResponse(opts: IssueTokenOptions, env: NodeJS.ProcessEnv): Promise<void> {
  const configured = opts.audience ?? env.GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE;
  if (configured === undefined || configured === '') {
    throw new OzError('usage', 'missing audience: pass --audience or set GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE (Google\'s libraries set it)');
  }
  const issued = await issue(opts, gcpTokenAudienceClaim(configured), env);
  const requestedType = env.GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE;
  const response = {
    version: 1,
    success: true,
    token_type: requestedType === ID_TOKEN_TYPE ? ID_TOKEN_TYPE : JWT_TOKEN_TYPE,
    id_token: issued.token,
    expiration_time: Math.floor(issued.expiresAt.getTime() / 1000),
  };
  const body = JSON.stringify(response);
  const cache = env.GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE;
  if (cache) {
    try {
      writeFileAtomic(cache, body, { mode: 0o600 });
    } catch {
      // The cache only saves a later call; the token on stdout is still good.
    }
  }
  out(`${body}\n`);
}
