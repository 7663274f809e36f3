import { lstatSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { AWS_STS_AUDIENCE, sessionNameForRun } from './aws.js';
import { readSetting, type Env } from '../core/settings.js';
import * as S from './settings.js';
import { OzError, describeCause, quote } from '../core/errors.js';
import { buildExternalAccountConfig, executableCommand, validateGcpFederation, type GcpFederation } from './gcp.js';
import { assertPrivateDir, ensurePrivateDir, tryUnlink, writeFileAtomic } from '../core/securefile.js';
import { issueToken } from './sources/index.js';
import { MAX_TOKEN_SECONDS } from '../core/claims.js';
import type { EnvAssignment } from './shell.js';

const PREPARE_DIR_CHECK = {
  code: 'config',
  what: 'prepare directory',
  instead: 'pass --dir (or set OZ_PREPARE_DIR) a private directory such as ~/.cache/oz-run',
} as const;

/** File names inside the private directory; cleanup removes exactly these. */
export const PREPARED_FILES = {
  awsToken: 'aws-web-identity-token',
  gcpConfig: 'gcp-credentials.json',
  gcpCache: 'gcp-executable-output.json',
} as const;

/** Every variable prepare may export, in the order it prints them; cleanup unsets these. */
export const PREPARED_VARIABLES = [
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_SESSION_NAME',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE',
  'GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES',
  'GOOGLE_CLOUD_PROJECT',
  'CLOUDSDK_CORE_PROJECT',
] as const;

export interface PrepareFlags {
  awsRoleArn?: string;
  gcpProjectNumber?: string;
  gcpPoolId?: string;
  gcpProviderId?: string;
  gcpServiceAccount?: string;
  gcpProjectId?: string;
  dir?: string;
}

export interface PrepareContext {
  env: Env;
  cwd: string;
  now: Date;
  /** Absolute path of the oz executable, for the GCP config to run. */
  ozPath: string;
  uid: number | undefined;
  /** Told once when the token service is slow to answer (see IssueRequest). */
  onRetry?: (what: string, boundSeconds: number) => void;
}

export interface PrepareResult {
  vars: EnvAssignment[];
  /** One-line notes and warnings for stderr. */
  notes: string[];
  dir?: string;
}

/** A setting's value: its flag, else its variable (an empty one counts as unset). */
function pick(setting: S.SettingOf<string>, flag: string | undefined, env: Env): string | undefined {
  return readSetting(setting, env, flag === '' ? undefined : flag)?.value;
}

/**
 * The private directory: --dir, else `oz` under $XDG_RUNTIME_DIR (a per-user tmpfs that the
 * login manager creates 0700), else `oz-<uid>` in the system temp directory.
 */
export function preparedDir(flagDir: string | undefined, env: Env, cwd: string, uid: number | undefined): string {
  const chosen = pick(S.PREPARE_DIR, flagDir, env);
  if (chosen !== undefined) return resolve(cwd, chosen);
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime)) return join(runtime, 'oz');
  return join(tmpdir(), `oz-${uid ?? 'user'}`);
}

/**
 * Validate every input, mint the AWS token, then write the files and return the variables
 * to export. Nothing is written until every check has passed and the token is in hand, so
 * a refused input leaves no file behind.
 */
export async function prepare(flags: PrepareFlags, ctx: PrepareContext): Promise<PrepareResult> {
  const { env } = ctx;
  const roleArn = pick(S.AWS_ROLE_ARN, flags.awsRoleArn, env);
  const gcp = validateGcpFederation({
    projectNumber: pick(S.GCP_PROJECT_NUMBER, flags.gcpProjectNumber, env),
    poolId: pick(S.GCP_POOL_ID, flags.gcpPoolId, env),
    providerId: pick(S.GCP_PROVIDER_ID, flags.gcpProviderId, env),
    serviceAccount: pick(S.GCP_SERVICE_ACCOUNT, flags.gcpServiceAccount, env),
    projectId: pick(S.GCP_PROJECT_ID, flags.gcpProjectId, env),
  });
  if (roleArn === undefined && gcp === undefined) {
    return {
      vars: [],
      notes: [
        'oz: nothing to prepare: no AWS role (--aws-role-arn or OZ_AWS_ROLE_ARN) and no GCP provider (--gcp-project-number, --gcp-pool-id, --gcp-provider-id or OZ_GCP_*)',
      ],
    };
  }
  const dir = preparedDir(flags.dir, env, ctx.cwd, ctx.uid);
  const command = gcp ? executableCommand(ctx.ozPath) : undefined;
  const notes: string[] = [];
  const vars: EnvAssignment[] = [];

  let aws: { token: string; runId: string } | undefined;
  if (roleArn !== undefined) {
    // As long as the run may last: the capping rules bring it down to the deadline.
    const issued = await issueToken(env, ctx.cwd, ctx.now, { audience: AWS_STS_AUDIENCE, requestedSeconds: MAX_TOKEN_SECONDS, onRetry: ctx.onRetry });
    // The session name follows the token's run_id: with a token service that is the grant's,
    // whatever the sandbox's OZ_RUN_ID says.
    aws = { token: issued.token, runId: String(issued.claims.run_id) };
    if (env.AWS_ACCESS_KEY_ID) {
      notes.push('oz: warning: AWS_ACCESS_KEY_ID is set; every AWS SDK prefers static keys to web identity, so unset it for the role to be used');
    }
  }

  ensurePrivateDir(dir, PREPARE_DIR_CHECK);
  const write = (name: string, data: string) => {
    const path = join(dir, name);
    try {
      writeFileAtomic(path, data, { mode: 0o600 });
    } catch (e) {
      throw new OzError('io', `cannot write ${quote(path)}: ${describeCause(e)}`, { cause: e });
    }
    return path;
  };

  if (roleArn !== undefined && aws !== undefined) {
    // No trailing newline: the SDKs send the file's bytes to STS as they are.
    const tokenFile = write(PREPARED_FILES.awsToken, aws.token);
    vars.push(['AWS_ROLE_ARN', roleArn], ['AWS_WEB_IDENTITY_TOKEN_FILE', tokenFile], ['AWS_ROLE_SESSION_NAME', sessionNameForRun(aws.runId)]);
  }
  if (gcp !== undefined && command !== undefined) {
    vars.push(...writeGcp(gcp, command, dir, write));
  }
  return { vars, notes, dir };
}

function writeGcp(gcp: GcpFederation, command: string, dir: string, write: (name: string, data: string) => string): EnvAssignment[] {
  const outputFile = join(dir, PREPARED_FILES.gcpCache);
  // A response cached for an earlier run would otherwise be served until it expires.
  tryUnlink(outputFile);
  const config = buildExternalAccountConfig(gcp, { executableCommand: command, outputFile });
  const configFile = write(PREPARED_FILES.gcpConfig, `${JSON.stringify(config, null, 2)}\n`);
  const vars: EnvAssignment[] = [
    ['GOOGLE_APPLICATION_CREDENTIALS', configFile],
    ['CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', configFile],
    ['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES', '1'],
  ];
  if (gcp.projectId !== undefined) vars.push(['GOOGLE_CLOUD_PROJECT', gcp.projectId], ['CLOUDSDK_CORE_PROJECT', gcp.projectId]);
  return vars;
}

/** Remove what prepare wrote (only those files, and the directory once empty). */
export function cleanup(flagDir: string | undefined, ctx: Omit<PrepareContext, 'ozPath' | 'now'>): { removed: string[]; dir: string } {
  const dir = preparedDir(flagDir, ctx.env, ctx.cwd, ctx.uid);
  const removed: string[] = [];
  if (!existsNoFollow(dir)) return { removed, dir };
  // The same checks as prepare: never act in a directory someone else controls.
  assertPrivateDir(dir, PREPARE_DIR_CHECK);
  for (const name of Object.values(PREPARED_FILES)) {
    const path = join(dir, name);
    if (tryUnlink(path)) removed.push(path);
  }
  tryRmdir(dir);
  return { removed, dir };
}

function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (something else lives there) or already gone: leave it.
  }
}
