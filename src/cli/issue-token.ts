import { OzError } from '../core/errors.js';
import { parseDurationSeconds } from '../core/duration.js';
import { parseFrom } from '../core/settings.js';
import { DEFAULT_TOKEN_SECONDS, validateAudience } from '../core/claims.js';
import { gcpTokenAudienceClaim } from '../sandbox/gcp.js';
import { writeFileAtomic } from '../core/securefile.js';
import { issueToken, type IssuedToken } from '../sandbox/sources/index.js';
import type { ISSUE_TOKEN, OptionsOf } from './spec.js';
import { out } from './output.js';

export type IssueTokenOptions = OptionsOf<typeof ISSUE_TOKEN>;

const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

export async function issueTokenCommand(opts: IssueTokenOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const format = opts.format ?? 'jwt';
  if (format === 'gcp') return gcpResponse(opts, env);
  const issued = await issue(opts, opts.audience, env);
  out(format === 'jwt' ? `${issued.token}\n` : `${JSON.stringify(jsonResult(issued), null, 2)}\n`);
}

async function issue(opts: IssueTokenOptions, audience: string | undefined, env: NodeJS.ProcessEnv): Promise<IssuedToken> {
  const requestedSeconds = opts.duration === undefined ? DEFAULT_TOKEN_SECONDS : parseFrom(parseDurationSeconds, opts.duration, '--duration', 'usage');
  return issueToken(env, process.cwd(), new Date(), { audience: validateAudience(audience), requestedSeconds });
}

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
