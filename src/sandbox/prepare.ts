import { lstatSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { AWS_STS_AUDIENCE } from './aws.js';
import { sessionNameForRun } from './aws-session.js';
import { parseFrom, readSetting, type Env, type Setting } from '../core/settings.js';
import * as S from './settings.js';
import { OzError, quote } from '../core/errors.js';
import { buildExternalAccountConfig, executableCommand, gcpAudience, gcpTokenAudienceClaim, validateGcpFederation, type GcpFederation } from './gcp.js';
import { assertPrivateDir, ensurePrivateDir, tryUnlink } from '../core/securefile.js';
import { issueToken, isRemoteMode, type IssuedToken } from './sources/index.js';
import { BACKDATE_SECONDS, MAX_TOKEN_SECONDS } from '../core/claims.js';
import { decodeJwt } from '../core/jwt.js';
import { parseDurationSeconds } from '../core/duration.js';
import type { EnvAssignment } from './shell.js';
import { assertionLifetime, AZURE_MAX_ASSERTION_SECONDS, AZURE_SIGNING_ALG, AZURE_TOKEN_EXCHANGE_AUDIENCE, isMicrosoftAuthorityHost } from './azure.js';
import { MANIFEST_FILE, readManifest, writeIn, writeManifest, type ManifestEntry } from './token-manifest.js';
import { LOCK_FILE, LOG_FILE, startRefresher, stopRefresher } from './refresher-lock.js';
import { checkTokenFileRequests, parseTokenFileRequest, TOKEN_FILE_VARIABLE_PREFIX, tokenFileName, tokenFileVariable, variableOfTokenFile, type TokenFileRequest } from './token-files.js';

const PREPARE_DIR_CHECK = {
  code: 'config',
  what: 'prepare directory',
  instead: 'pass --dir (or set OZ_PREPARE_DIR) a private directory such as ~/.cache/oz-run',
} as const;

/** File names inside the private directory; cleanup removes exactly these, and every `token-*` file. */
export const PREPARED_FILES = {
  awsToken: 'aws-web-identity-token',
  azureToken: 'azure-federated-token',
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

/**
 * Every fixed variable prepare may export, in the order it prints them; cleanup unsets these,
 * and the `OZ_TOKEN_FILE_<NAME>` of every `--token` file.
 */
export const PREPARED_VARIABLES = [
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_SESSION_NAME',
  'AZURE_CLIENT_ID',
  'AZURE_TENANT_ID',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_AUTHORITY_HOST',
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
  azureClientId?: string;
  azureTenantId?: string;
  azureAuthorityHost?: string;
  token?: string[];
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
  /** Told once when the token service is slow to answer (see IssueRequest). */
  onRetry?: (what: string, boundSeconds: number) => void;
  /** False: leave keeping the files fresh to the caller (exec runs its own keeper). */
  startRefresher?: boolean;
}

export interface PrepareResult {
  vars: EnvAssignment[];
  /** One-line notes and warnings for stderr. */
  notes: string[];
  dir?: string;
  /** Every token file written: what a refresher keeps fresh. */
  tokenFiles: ManifestEntry[];
  /** The refresher serving the directory, with --refresh. */
  refresher?: { pid: number | undefined; started: boolean };
}

/**
 * A token file prepare writes: the AWS web identity token, the Azure federated token, GCP's
 * file-sourced subject token and each `--token` file are all one of these, issued, checked and
 * written the same way, listed in the manifest the refresher keeps fresh and cleanup removes.
 */
export interface TokenFile {
  /** The file's name inside the private directory. */
  file: string;
  audience: string;
  /** The names of the variables it exports. */
  exports: readonly string[];
  /** The variables to export once the file is written at `path`. */
  variables(path: string, issued: IssuedToken): EnvAssignment[];
  /** The longest lifetime the relying party accepts, when shorter than oz's own day. */
  maxSeconds?: number;
  /** Why the relying party would refuse this token, if it would: checked before anything is written. */
  refusal?(issued: IssuedToken, env: Env): OzError | undefined;
}

/** What prepare would set up: the token files and the GCP config, from validated inputs. */
export interface PreparePlan {
  tokenFiles: TokenFile[];
  gcp?: GcpFederation;
  /** Notes that follow from the inputs alone. */
  notes: string[];
}

/** A setting's value: its flag, else its variable (an empty one counts as unset). */
function pick(setting: Setting<string>, flag: string | undefined, env: Env): string | undefined {
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
 * Every input of prepare, validated, as the list of token files to write and the GCP config.
 * Nothing is issued or written here; `whoami` shows the same plan.
 */
export function planPrepare(flags: PrepareFlags, env: Env): PreparePlan {
  const roleArn = pick(S.AWS_ROLE_ARN, flags.awsRoleArn, env);
  const gcp = validateGcpFederation({
    projectNumber: pick(S.GCP_PROJECT_NUMBER, flags.gcpProjectNumber, env),
    poolId: pick(S.GCP_POOL_ID, flags.gcpPoolId, env),
    providerId: pick(S.GCP_PROVIDER_ID, flags.gcpProviderId, env),
    serviceAccount: pick(S.GCP_SERVICE_ACCOUNT, flags.gcpServiceAccount, env),
    projectId: pick(S.GCP_PROJECT_ID, flags.gcpProjectId, env),
  });
  const azure = readAzure(flags, env);
  const others = readTokenFiles(flags.token, env);
  const notes: string[] = [];
  const tokenFiles: TokenFile[] = [];
  if (roleArn !== undefined) {
    tokenFiles.push({
      file: PREPARED_FILES.awsToken,
      audience: AWS_STS_AUDIENCE,
      exports: ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_SESSION_NAME'],
      // The session name follows the token's run_id: with a token service that is the grant's,
      // whatever the sandbox's OZ_RUN_ID says.
      variables: (path, issued) => [['AWS_ROLE_ARN', roleArn], ['AWS_WEB_IDENTITY_TOKEN_FILE', path], ['AWS_ROLE_SESSION_NAME', sessionNameForRun(String(issued.claims.run_id))]],
    });
    if (env.AWS_ACCESS_KEY_ID) {
      notes.push('oz: warning: AWS_ACCESS_KEY_ID is set; every AWS SDK prefers static keys to web identity, so unset it for the role to be used');
    }
  }
  if (azure !== undefined) {
    tokenFiles.push({
      file: PREPARED_FILES.azureToken,
      audience: AZURE_TOKEN_EXCHANGE_AUDIENCE,
      exports: ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST'],
      maxSeconds: AZURE_MAX_ASSERTION_SECONDS - BACKDATE_SECONDS,
      variables: (path) => [
        ['AZURE_CLIENT_ID', azure.clientId],
        ['AZURE_TENANT_ID', azure.tenantId],
        ['AZURE_FEDERATED_TOKEN_FILE', path],
        ['AZURE_AUTHORITY_HOST', azure.authorityHost],
      ],
      refusal: azureRefusal,
    });
    // EnvironmentCredential comes first in DefaultAzureCredential's chain and takes a secret or
    // a certificate over the federated token file, as the AWS SDKs take static keys.
    const shadowing = ['AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH'].filter((v) => env[v]);
    if (shadowing.length > 0) {
      const [verb, them] = shadowing.length > 1 ? ['are', 'them'] : ['is', 'it'];
      notes.push(`oz: warning: ${shadowing.join(' and ')} ${verb} set; DefaultAzureCredential uses ${them} before the federated token file, so unset ${them} for workload identity to be used`);
    }
    if (!isMicrosoftAuthorityHost(azure.authorityHost)) {
      notes.push(`oz: note: ${azure.authorityHost} is not one of Microsoft's authority hosts: @azure/identity's WorkloadIdentityCredential needs { disableInstanceDiscovery: true } to use it`);
    }
  }
  for (const t of others) {
    const variable = tokenFileVariable(t.name);
    tokenFiles.push({ file: tokenFileName(t.name), audience: t.audience, exports: [variable], variables: (path) => [[variable, path]] });
  }
  if (gcp !== undefined && flags.gcpCredentialSource === 'file') {
    // Its variables are the GCP config's (writeGcp): the file is what the config names.
    tokenFiles.push({ file: PREPARED_FILES.gcpToken, audience: gcpTokenAudienceClaim(gcpAudience(gcp)), exports: [], variables: () => [] });
  }
  return { tokenFiles, ...(gcp !== undefined ? { gcp } : {}), notes };
}

/**
 * Validate every input, issue every token and check it, then write the files and return the
 * variables to export. Nothing is written until every check has passed and every token is in
 * hand, so a refused input or token leaves no file behind.
 */
export async function prepare(flags: PrepareFlags, ctx: PrepareContext): Promise<PrepareResult> {
  const { env } = ctx;
  const plan = planPrepare(flags, env);
  const seconds = tokenSeconds(flags);
  if (plan.tokenFiles.length === 0 && plan.gcp === undefined) {
    return {
      tokenFiles: [],
      vars: [],
      notes: [
        'oz: nothing to prepare: no AWS role (--aws-role-arn or OZ_AWS_ROLE_ARN), no GCP provider (--gcp-project-number, --gcp-pool-id, --gcp-provider-id or OZ_GCP_*), no Azure application (--azure-client-id and --azure-tenant-id or OZ_AZURE_*) and no --token (OZ_TOKEN_FILES)',
      ],
    };
  }
  const dir = preparedDir(flags.dir, env, ctx.cwd, ctx.uid);
  const gcpFileSource = flags.gcpCredentialSource === 'file';
  const command = plan.gcp && !gcpFileSource ? executableCommand(ctx.ozPath) : undefined;

  const issued: IssuedToken[] = [];
  for (const t of plan.tokenFiles) {
    // --duration, else as long as the run may last (the capping rules bring it down to the
    // deadline), within what the relying party accepts.
    const requestedSeconds = Math.min(seconds, t.maxSeconds ?? MAX_TOKEN_SECONDS);
    const token = await issueToken(env, ctx.cwd, ctx.now, { audience: t.audience, requestedSeconds, onRetry: ctx.onRetry });
    const refused = t.refusal?.(token, env);
    if (refused) throw refused;
    issued.push(token);
  }

  ensurePrivateDir(dir, PREPARE_DIR_CHECK);
  const write = (name: string, data: string) => writeIn(dir, name, data);
  // Cleanup and the refresher work from the manifest, so it is written before the files it names.
  const tokenFiles = plan.tokenFiles.map((t) => ({ file: t.file, audience: t.audience }));
  writeManifest(dir, { version: 1, duration_seconds: seconds, files: tokenFiles });
  const vars: EnvAssignment[] = [];
  plan.tokenFiles.forEach((t, i) => vars.push(...writeTokenFile(t, issued[i]!, write)));
  if (plan.gcp !== undefined) {
    const source = gcpFileSource ? { tokenFile: join(dir, PREPARED_FILES.gcpToken) } : { command: command! };
    vars.push(...writeGcp(plan.gcp, source, dir, write));
  }
  const notes = [...plan.notes];
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
  const seconds = parseFrom(parseDurationSeconds, flags.duration, '--duration', 'usage');
  if (flags.refresh && seconds < REFRESH_MIN_SECONDS) {
    throw new OzError('usage', `--duration ${quote(flags.duration)} is too short to refresh: use at least ${REFRESH_MIN_SECONDS}s`);
  }
  return seconds;
}

/** The one way a token file is written: the JWT's bytes alone, atomically, 0600. */
export function writeTokenFile(t: TokenFile, issued: IssuedToken, write: (name: string, data: string) => string): EnvAssignment[] {
  // No trailing newline: the SDKs send the file's bytes as they are.
  const path = write(t.file, issued.token);
  return t.variables(path, issued);
}

interface AzureFederation {
  clientId: string;
  tenantId: string;
  authorityHost: string;
}

/** Client and tenant come together or not at all; the authority host only with them. */
function readAzure(flags: PrepareFlags, env: Env): AzureFederation | undefined {
  const clientId = pick(S.AZURE_CLIENT_ID, flags.azureClientId, env);
  const tenantId = pick(S.AZURE_TENANT_ID, flags.azureTenantId, env);
  const host = readSetting(S.AZURE_AUTHORITY_HOST, env, flags.azureAuthorityHost === '' ? undefined : flags.azureAuthorityHost);
  if (clientId === undefined && tenantId === undefined) {
    if (host.source !== 'default') {
      throw new OzError('usage', `${host.from} needs Azure federation: set --azure-client-id (OZ_AZURE_CLIENT_ID) and --azure-tenant-id (OZ_AZURE_TENANT_ID) as well`);
    }
    return undefined;
  }
  if (clientId === undefined || tenantId === undefined) {
    const missing = clientId === undefined ? '--azure-client-id (OZ_AZURE_CLIENT_ID)' : '--azure-tenant-id (OZ_AZURE_TENANT_ID)';
    throw new OzError('usage', `incomplete Azure federation settings: missing ${missing}; set --azure-client-id and --azure-tenant-id together, or neither`);
  }
  return { clientId, tenantId, authorityHost: host.value };
}

/**
 * Entra ID refuses any algorithm but RS256 (AADSTS5002738) and a lifetime over about a day
 * (AADSTS70023). Both are judged on the token as issued, so the check holds for the embedded
 * issuer and for a token service alike, whose key oz cannot see beforehand.
 */
export function azureRefusal(issued: IssuedToken, env: Env): OzError | undefined {
  const decoded = decodeJwt(issued.token);
  const alg = decoded.ok ? decoded.value.header.alg : undefined;
  const remote = isRemoteMode(env);
  if (alg !== AZURE_SIGNING_ALG) {
    const shown = typeof alg === 'string' ? alg : 'no algorithm';
    return new OzError(
      'config',
      remote
        ? `cannot prepare Azure: Entra ID accepts RS256 tokens only, and the token service signs with ${quote(shown, 20)}: its operator must switch the issuer to an RS256 key (oz issuer rotate --alg RS256)`
        : `cannot prepare Azure: Entra ID accepts RS256 tokens only, and the embedded issuer's key is ${quote(shown, 20)}: run \`oz issuer rotate --alg RS256\` (and publish the new JWKS), or drop the Azure settings`,
    );
  }
  const lifetime = assertionLifetime(issued.claims);
  if (lifetime === undefined || lifetime > AZURE_MAX_ASSERTION_SECONDS) {
    return new OzError(
      'config',
      `cannot prepare Azure: the ${remote ? "token service's" : 'issued'} token is valid for ${lifetime === undefined ? 'an unknown time (no exp, nbf or iat)' : `${lifetime} s`}, and Entra ID refuses tokens valid for more than a day`,
    );
  }
  return undefined;
}

function readTokenFiles(flagValues: readonly string[] | undefined, env: Env): TokenFileRequest[] {
  const given = (flagValues ?? []).filter((v) => v !== '');
  if (given.length === 0) return readSetting(S.TOKEN_FILES, env)?.value ?? [];
  const requests = given.map((raw) => parseFrom(parseTokenFileRequest, raw, '--token', 'usage'));
  const checked = checkTokenFileRequests(requests);
  if (!checked.ok) throw new OzError('usage', `invalid --token: ${checked.problem}`);
  return checked.value;
}

function writeGcp(gcp: GcpFederation, source: { command: string } | { tokenFile: string }, dir: string, write: (name: string, data: string) => string): EnvAssignment[] {
  const outputFile = join(dir, PREPARED_FILES.gcpCache);
  // A response cached for an earlier run would otherwise be served until it expires.
  tryUnlink(outputFile);
  const config =
    'tokenFile' in source
      ? buildExternalAccountConfig(gcp, { tokenFile: source.tokenFile })
      : buildExternalAccountConfig(gcp, { executableCommand: source.command, outputFile });
  const configFile = write(PREPARED_FILES.gcpConfig, `${JSON.stringify(config, null, 2)}\n`);
  const vars: EnvAssignment[] = [
    ['GOOGLE_APPLICATION_CREDENTIALS', configFile],
    ['CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', configFile],
  ];
  if (!('tokenFile' in source)) vars.push(['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES', '1']);
  if (gcp.projectId !== undefined) vars.push(['GOOGLE_CLOUD_PROJECT', gcp.projectId], ['CLOUDSDK_CORE_PROJECT', gcp.projectId]);
  return vars;
}

/**
 * Remove what prepare wrote (only those files, and the directory once empty) and name the
 * variables to unset. Cleanup is not told which `--token` names were used, and needs not be:
 * every `token-<name>` file in the directory is one, and names its `OZ_TOKEN_FILE_<NAME>`. The
 * variables of the caller's environment that point at such a file here count too, so that a
 * second cleanup (the files already gone) still unsets them.
 */
export function cleanup(flagDir: string | undefined, ctx: Omit<PrepareContext, 'ozPath' | 'now'>): { removed: string[]; dir: string; unset: string[] } {
  const dir = preparedDir(flagDir, ctx.env, ctx.cwd, ctx.uid);
  const removed: string[] = [];
  const tokenVariables = new Set<string>();
  for (const [name, value] of Object.entries(ctx.env)) {
    if (name.startsWith(TOKEN_FILE_VARIABLE_PREFIX) && value !== undefined && variableOfTokenFile(relative(dir, value)) === name) tokenVariables.add(name);
  }
  const unset = () => [...PREPARED_VARIABLES, ...[...tokenVariables].sort()];
  if (!existsNoFollow(dir)) return { removed, dir, unset: unset() };
  // The same checks as prepare: never act in a directory someone else controls.
  assertPrivateDir(dir, PREPARE_DIR_CHECK);
  // The refresher goes first, and is waited for, so that it writes nothing after the files are gone.
  stopRefresher(dir);
  const listed = readManifest(dir)?.files.map((f) => f.file) ?? [];
  const tokenFiles = readdirSync(dir).filter((name) => variableOfTokenFile(name) !== undefined);
  for (const name of new Set([...listed, ...Object.values(PREPARED_FILES), ...tokenFiles])) {
    const path = join(dir, name);
    if (tryUnlink(path)) {
      removed.push(path);
      const variable = variableOfTokenFile(name);
      if (variable !== undefined) tokenVariables.add(variable);
    }
  }
  tryRmdir(dir);
  return { removed, dir, unset: unset() };
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
