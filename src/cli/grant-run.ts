import { OzError, quote } from '../core/errors.js';
import { parseDeadline, parseTeams } from '../core/context.js';
import { formatDuration, parseDurationOrThrow } from '../core/duration.js';
import { DEFAULT_GRANT_SECONDS, grantClaims, MAX_GRANT_SECONDS, mintGrant } from '../platform/grant-mint.js';
import type { RunClaims } from '../core/claims.js';
import { loadSigningKey, parseAlg } from '../core/keys.js';
import { claimValueProblem } from '../core/claims.js';
import { dataDir } from '../core/paths.js';
import { issuerUrl } from './issuer.js';
import { out } from './output.js';

export interface GrantRunOptions {
  runId?: string;
  subject?: string;
  email?: string;
  teams?: string;
  environment?: string;
  agentName?: string;
  skillSpec?: string;
  host?: string;
  maxDuration?: string;
  deadline?: string;
  issuer?: string;
  json?: boolean;
}

/** A claim value from a flag, by the rule audiences follow too. */
function claimValue(flag: string, value: string | undefined, required: true): string;
function claimValue(flag: string, value: string | undefined, required: false): string | undefined;
function claimValue(flag: string, value: string | undefined, required: boolean): string | undefined {
  if (value === undefined) {
    if (required) throw new OzError('usage', `missing ${flag}`);
    return undefined;
  }
  const problem = claimValueProblem(value);
  if (problem) throw new OzError('usage', `invalid ${flag} ${quote(value)}: ${problem}`);
  return value;
}

export function runClaimsFromFlags(opts: GrantRunOptions): RunClaims {
  const run: RunClaims = { sub: claimValue('--subject', opts.subject, true), run_id: claimValue('--run-id', opts.runId, true) };
  const optional: [keyof RunClaims, string, string | undefined][] = [
    ['email', '--email', opts.email],
    ['environment', '--environment', opts.environment],
    ['agent_name', '--agent-name', opts.agentName],
    ['skill_spec', '--skill-spec', opts.skillSpec],
    ['host', '--host', opts.host],
  ];
  for (const [claim, flag, value] of optional) {
    const v = claimValue(flag, value, false);
    if (v !== undefined) (run as unknown as Record<string, string>)[claim] = v;
  }
  const teams = claimValue('--teams', opts.teams, false);
  if (teams !== undefined) {
    run.teams = parseTeams(teams);
    if (run.teams.length === 0) throw new OzError('usage', `invalid --teams ${quote(teams)}: no team in it (comma-separated team UIDs)`);
  }
  return run;
}

/** When the grant expires: the run's deadline, given directly or as a maximum duration from now. */
export function grantDeadline(opts: Pick<GrantRunOptions, 'maxDuration' | 'deadline'>, now: Date): Date {
  if (opts.maxDuration !== undefined && opts.deadline !== undefined) {
    throw new OzError('usage', '--max-duration and --deadline both set the run\'s deadline: give one of them');
  }
  let deadline: Date;
  if (opts.deadline !== undefined) {
    const d = parseDeadline(opts.deadline);
    if (!d) throw new OzError('usage', `invalid --deadline ${quote(opts.deadline)}: expected an RFC 3339 time such as 2026-01-02T15:04:05Z or Unix seconds`);
    if (d.getTime() <= now.getTime()) {
      throw new OzError('usage', `invalid --deadline ${quote(opts.deadline)}: it is in the past (${formatDuration((now.getTime() - d.getTime()) / 1000)} ago)`);
    }
    deadline = d;
  } else {
    const seconds = opts.maxDuration === undefined ? DEFAULT_GRANT_SECONDS : parseDurationOrThrow(opts.maxDuration, '--max-duration');
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
  const deadline = grantDeadline(opts, now);
  const issuer = issuerUrl(opts.issuer);
  const alg = env.OZ_SIGNING_ALG ? parseAlg(env.OZ_SIGNING_ALG, 'config') : undefined;
  const key = loadSigningKey(await dataDir(env, process.cwd()), { alg });
  const claims = grantClaims({ issuer, run, deadline, now });
  const token = mintGrant(claims, key);
  if (opts.json) {
    out(`${JSON.stringify({ run_token: token, expires_at: new Date(claims.exp * 1000).toISOString(), claims }, null, 2)}\n`);
    return;
  }
  out(`${token}\n`);
}
