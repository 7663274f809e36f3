import { OzError, quote } from '../core/errors.js';
import { parseDeadline, readIssuerUrl, SIGNING_ALG } from '../core/context.js';
import { formatDuration, parseDurationSeconds } from '../core/duration.js';
import { DEFAULT_GRANT_SECONDS, grantClaims, MAX_GRANT_SECONDS, mintGrant } from '../platform/grant-mint.js';
import { loadSigningKey } from '../core/keys.js';
import { RUN_CLAIMS, parseClaimValue, type RunClaims } from '../core/claims.js';
import { parseFrom, readSetting } from '../core/settings.js';
import { formatClaims, parseClaimList, STS_AUDIENCE, type ClaimFormats } from '../core/claim-formats.js';
import { dataDir } from '../core/paths.js';
import { optionKey, type GRANT_RUN, type OptionsOf } from './spec.js';
import { out } from './output.js';

export type GrantRunOptions = OptionsOf<typeof GRANT_RUN>;

/** The run's claims from grant-run's flags, one per run claim of the registry. */
export function runClaimsFromFlags(opts: GrantRunOptions): RunClaims {
  const given = opts as Record<string, string | undefined>;
  const run: Record<string, unknown> = {};
  for (const spec of RUN_CLAIMS) {
    const raw = given[optionKey(spec.flag)];
    if (raw === undefined) {
      if ('required' in spec) throw new OzError('usage', `missing ${spec.flag}`);
      continue;
    }
    run[spec.claim] = parseFrom((text) => parseClaimValue(spec, text), raw, spec.flag, 'usage');
  }
  return run as RunClaims;
}

/**
 * The claim formats the grant fixes, from the flags only: the platform chooses them per grant.
 * What they make of this run's claims is checked now, as a token for STS would carry it, so a
 * run whose subject or tags AWS would refuse is never granted.
 */
export function claimFormatsFromFlags(opts: Pick<GrantRunOptions, 'awsSessionTags' | 'subjectClaims'>, run: RunClaims): ClaimFormats {
  const formats: ClaimFormats = {
    ...(opts.awsSessionTags !== undefined ? { sessionTags: parseFrom(parseClaimList, opts.awsSessionTags, '--aws-session-tags', 'usage') } : {}),
    ...(opts.subjectClaims !== undefined ? { subjectClaims: parseFrom(parseClaimList, opts.subjectClaims, '--subject-claims', 'usage') } : {}),
  };
  const shaped = formatClaims(run, STS_AUDIENCE, formats);
  if (!shaped.ok) {
    const flags = [opts.awsSessionTags !== undefined && '--aws-session-tags', opts.subjectClaims !== undefined && '--subject-claims'].filter(Boolean).join(' and ');
    throw new OzError('usage', `cannot grant this run with ${flags}: ${shaped.problem}`);
  }
  return formats;
}

/** When the grant expires: the run's deadline, given directly or as a maximum duration from now. */
export function grantDeadline(opts: Pick<GrantRunOptions, 'maxDuration' | 'deadline'>, now: Date): Date {
  if (opts.maxDuration !== undefined && opts.deadline !== undefined) {
    throw new OzError('usage', '--max-duration and --deadline both set the run\'s deadline: give one of them');
  }
  let deadline: Date;
  if (opts.deadline !== undefined) {
    const d = parseFrom(parseDeadline, opts.deadline, '--deadline', 'usage');
    if (d.getTime() <= now.getTime()) {
      throw new OzError('usage', `invalid --deadline ${quote(opts.deadline)}: it is in the past (${formatDuration((now.getTime() - d.getTime()) / 1000)} ago)`);
    }
    deadline = d;
  } else {
    const seconds = opts.maxDuration === undefined ? DEFAULT_GRANT_SECONDS : parseFrom(parseDurationSeconds, opts.maxDuration, '--max-duration', 'usage');
    deadline = new Date(now.getTime() + seconds * 1000);
  }
  if (deadline.getTime() - now.getTime() > MAX_GRANT_SECONDS * 1000) {
    throw new OzError(
      'usage',
      `the run's deadline ${deadline.toISOString()} is more than ${formatDuration(MAX_GRANT_SECONDS)} away: a run grant lasts at most that long, the time a rotated key stays published`,
    );
  }
  return deadline;
}

export async function grantRunCommand(opts: GrantRunOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const now = new Date();
  const run = runClaimsFromFlags(opts);
  const formats = claimFormatsFromFlags(opts, run);
  const deadline = grantDeadline(opts, now);
  const issuer = readIssuerUrl(env, opts.issuer);
  const key = loadSigningKey(await dataDir(env, process.cwd()), { alg: readSetting(SIGNING_ALG, env)?.value });
  const claims = grantClaims({ issuer, run, formats, deadline, now });
  const token = mintGrant(claims, key);
  if (opts.json) {
    out(`${JSON.stringify({ run_token: token, expires_at: new Date(claims.exp * 1000).toISOString(), claims }, null, 2)}\n`);
    return;
  }
  out(`${token}\n`);
}
