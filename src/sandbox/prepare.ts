import { lstatSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { AWS_STS_AUDIENCE, sessionNameForRun } from './aws.js';
import { readSetting, type Env } from '../core/settings.js';
import * as S from './settings.js';
import { OzError, quote } from '../core/errors.js';
import { buildExternalAccountConfig, executableCommand, gcpAudience, gcpTokenAudienceClaim, validateGcpFederation, type GcpFederation } from './gcp.js';
import { assertPrivateDir, ensurePrivateDir, tryUnlink } from '../core/securefile.js';
import { MAX_TOKEN_SECONDS } from '../core/claims.js';
import { parseDurationSeconds } from '../core/duration.js';
import type { EnvAssignment } from './shell.js';
import { MANIFEST_FILE, issueAll, readManifest, tokenFileContent, writeIn, writeManifest, type TokenFile } from './token-files.js';
import { LOCK_FILE, LOG_FILE, startRefresher, stopRefresher } from './refresher-lock.js';

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
  gcpToken: 'gcp-subject-token',
  manifest: MANIFEST_FILE,
  refresherLock: LOCK_FILE,
  refresherLog: LOG_FILE,
} as const;

/** With --refresh and no --duration: short tokens, replaced well before they expire. */
export const REFRESH_DEFAULT_SECONDS = 3600;
/** The shortest --duration with --refresh: a refresh every 8 s is already more than any reader needs. */
export const REFRESH_MIN_SECONDS = 10;

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
  gcpCredentialSource?: (typeof S.GCP_CREDENTIAL_SOURCES)[number];
  dir?: string;
  /** The token files' lifetime, e.g. `1h` (default: the rest of the run; with refresh, 1 h). */
  duration?: string;
  /** Keep the token files fresh: a background refresher (prepare) or the caller's own keeper (exec). */
  refresh?: boolean;
}

export interface PrepareContext {
  env: Env;
  cwd: string;
  now: Date;
  /** Absolute path of the oz executable, for the GCP config to run. */
  ozPath: string;
  uid: number | undefined;
  /** False: leave keeping the files fresh to the caller (exec runs its own keeper). */
  startRefresher?: boolean;
}

export interface PrepareResult {
  vars: EnvAssignment[];
  /** One-line notes and warnings for stderr. */
  notes: string[];
  dir?: string;
  /** Every token file written, and the lifetime they were asked for: what a refresher keeps fresh. */
  tokenFiles: TokenFile[];
  /** The refresher serving the directory, with --refresh. */
  refresher?: { pid: number | undefined; started: boolean };
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
  const gcpFileSource = (flags.gcpCredentialSource ?? 'executable') === 'file';
  const seconds = tokenSeconds(flags);
  if (roleArn === undefined && gcp === undefined) {
    return {
      tokenFiles: [],
      vars: [],
      notes: [
        'oz: nothing to prepare: no AWS role (--aws-role-arn or OZ_AWS_ROLE_ARN) and no GCP provider (--gcp-project-number, --gcp-pool-id, --gcp-provider-id or OZ_GCP_*)',
      ],
    };
  }
  const dir = preparedDir(flags.dir, env, ctx.cwd, ctx.uid);
  const command = gcp && !gcpFileSource ? executableCommand(ctx.ozPath) : undefined;
  const notes: string[] = [];
  const vars: EnvAssignment[] = [];

  // Every token file, one list: the refresher and cleanup work from it, not from names.
  const tokenFiles: TokenFile[] = [];
  if (roleArn !== undefined) tokenFiles.push({ file: PREPARED_FILES.awsToken, audience: AWS_STS_AUDIENCE });
  if (gcp !== undefined && gcpFileSource) tokenFiles.push({ file: PREPARED_FILES.gcpToken, audience: gcpTokenAudienceClaim(gcpAudience(gcp)) });

  // Every token is in hand before anything is written. Without --duration a file's token lasts
  // as long as the run may: the capping rules bring it down to the deadline.
  const issued = await issueAll(tokenFiles, env, ctx.cwd, ctx.now, seconds);
  if (roleArn !== undefined && env.AWS_ACCESS_KEY_ID) {
    notes.push('oz: warning: AWS_ACCESS_KEY_ID is set; every AWS SDK prefers static keys to web identity, so unset it for the role to be used');
  }

  ensurePrivateDir(dir, PREPARE_DIR_CHECK);
  const write = (name: string, data: string) => writeIn(dir, name, data);
  // Cleanup removes what the manifest names, so it is written before the files it names.
  writeManifest(dir, { version: 1, duration_seconds: seconds, files: tokenFiles });
  // No trailing newline: the SDKs send the file's bytes as they are.
  tokenFiles.forEach((f, i) => write(f.file, tokenFileContent(issued[i]!)));
  const entry = (name: string) => tokenFiles.findIndex((f) => f.file === name);

  if (roleArn !== undefined) {
    // The session name follows the token's run_id: with a token service that is the grant's,
    // whatever the sandbox's OZ_RUN_ID says.
    const runId = String(issued[entry(PREPARED_FILES.awsToken)]!.claims.run_id);
    vars.push(['AWS_ROLE_ARN', roleArn], ['AWS_WEB_IDENTITY_TOKEN_FILE', join(dir, PREPARED_FILES.awsToken)], ['AWS_ROLE_SESSION_NAME', sessionNameForRun(runId)]);
  }
  if (gcp !== undefined) {
    const tokenFile = gcpFileSource ? join(dir, PREPARED_FILES.gcpToken) : undefined;
    vars.push(...writeGcp(gcp, { command, tokenFile }, dir, write));
  }
  const result: PrepareResult = { vars, notes, dir, tokenFiles };
  if (flags.refresh && ctx.startRefresher !== false) {
    if (tokenFiles.length === 0) notes.push('oz: note: --refresh has no token file to keep fresh (the GCP executable source asks oz for each token)');
    else result.refresher = await startRefresher(dir, env as NodeJS.ProcessEnv);
  }
  return result;
}

/** The lifetime the token files are asked for: --duration, else 1 h with --refresh, else the whole run. */
function tokenSeconds(flags: PrepareFlags): number {
  if (flags.duration === undefined) return flags.refresh ? REFRESH_DEFAULT_SECONDS : MAX_TOKEN_SECONDS;
  const r = parseDurationSeconds(flags.duration);
  if (!r.ok) throw new OzError('usage', `bad --duration ${quote(flags.duration)}: ${r.problem}`);
  if (flags.refresh && r.value < REFRESH_MIN_SECONDS) {
    throw new OzError('usage', `--duration ${quote(flags.duration)} is too short to refresh: use at least ${REFRESH_MIN_SECONDS}s`);
  }
  return r.value;
}

function writeGcp(gcp: GcpFederation, source: { command?: string; tokenFile?: string }, dir: string, write: (name: string, data: string) => string): EnvAssignment[] {
  const outputFile = join(dir, PREPARED_FILES.gcpCache);
  // A response cached for an earlier run would otherwise be served until it expires.
  tryUnlink(outputFile);
  const config = source.tokenFile !== undefined
    ? buildExternalAccountConfig(gcp, { tokenFile: source.tokenFile })
    : buildExternalAccountConfig(gcp, { executableCommand: source.command!, outputFile });
  const configFile = write(PREPARED_FILES.gcpConfig, `${JSON.stringify(config, null, 2)}\n`);
  const vars: EnvAssignment[] = [
    ['GOOGLE_APPLICATION_CREDENTIALS', configFile],
    ['CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', configFile],
  ];
  if (source.tokenFile === undefined) vars.push(['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES', '1']);
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
  // The refresher goes first, and is waited for, so that it writes nothing after the files are gone.
  stopRefresher(dir);
  const listed = readManifest(dir)?.files.map((f) => f.file) ?? [];
  for (const name of new Set([...listed, ...Object.values(PREPARED_FILES)])) {
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
