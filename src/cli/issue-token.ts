import { OzError, quote } from '../core/errors.js';
import { parseDurationOrThrow } from '../core/duration.js';
import { DEFAULT_TOKEN_SECONDS, validateAudience } from '../core/claims.js';
import { gcpTokenAudienceClaim } from '../sandbox/gcp.js';
import { writeFileAtomic } from '../core/securefile.js';
import { issueToken, type IssuedToken } from '../sandbox/sources/index.js';
import { FORMATS, ISSUE_TOKEN_FLAGS, parseFlags, type TokenFormat } from './flags.js';
import { fail, failureOf, out } from './output.js';

export interface IssueTokenOptions {
  audience?: string;
  duration?: string;
  format?: string;
}

const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

/**
 * Fast path, taken without loading commander: parse with node:util and run. Returns false
 * when the arguments need commander (an unknown flag, a value that looks like a flag), so
 * that commander reports them with its usual messages.
 */
export async function runFast(args: string[], gcpMode: boolean): Promise<boolean> {
  const values = parseFlags(args, ISSUE_TOKEN_FLAGS);
  if (values === undefined) {
    if (!gcpMode) return false;
    writeGcpFailure(new OzError('usage', `bad arguments ${quote(args.join(' '))}: see \`oz federate issue-token --help\``));
    return true;
  }
  await issueTokenCommand(values);
  return true;
}

export async function issueTokenCommand(opts: IssueTokenOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let format: TokenFormat;
  try {
    format = parseFormat(opts.format);
  } catch (e) {
    return fail(e);
  }
  if (format === 'gcp') return gcpResponse(opts, env);
  try {
    const issued = await issue(opts, opts.audience, env);
    out(format === 'jwt' ? `${issued.token}\n` : `${JSON.stringify(jsonResult(issued), null, 2)}\n`);
  } catch (e) {
    await fail(e);
  }
}

function parseFormat(format: string | undefined): TokenFormat {
  if (format === undefined) return 'jwt';
  if ((FORMATS as readonly string[]).includes(format)) return format as TokenFormat;
  throw new OzError('usage', `invalid --format ${quote(format)}: use one of ${FORMATS.join(', ')}`);
}

async function issue(opts: IssueTokenOptions, audience: string | undefined, env: NodeJS.ProcessEnv): Promise<IssuedToken> {
  const requestedSeconds = opts.duration === undefined ? DEFAULT_TOKEN_SECONDS : parseDurationOrThrow(opts.duration, '--duration');
  return issueToken(env, process.cwd(), new Date(), { audience: validateAudience(audience), requestedSeconds });
}

export function jsonResult(issued: IssuedToken): { token: string; expires_at: string; claims: Record<string, unknown> } {
  return { token: issued.token, expires_at: issued.expiresAt.toISOString(), claims: issued.claims };
}

/**
 * The executable-sourced credential response that Google's libraries parse. Every outcome,
 * failures included, is one JSON document on stdout; stderr stays empty (the caller has
 * silenced it) because those libraries merge it into stdout.
 */
async function gcpResponse(opts: IssueTokenOptions, env: NodeJS.ProcessEnv): Promise<void> {
  try {
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
  } catch (e) {
    writeGcpFailure(e);
  }
}

function writeGcpFailure(e: unknown): void {
  const f = failureOf(e);
  process.exitCode = f.exitCode;
  out(`${JSON.stringify({ version: 1, success: false, code: f.code, message: f.message })}\n`);
}
