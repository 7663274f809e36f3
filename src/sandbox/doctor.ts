import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { readFileNoFollow } from '../core/securefile.js';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { readIssuerUrl, readRunLimits, type Env } from '../core/context.js';
import { describeCause, isOzError, quote } from '../core/errors.js';
import { decodeJwt } from '../core/jwt.js';
import { formatDuration } from '../core/duration.js';
import { envValue } from '../core/settings.js';
import { DISCOVERY_PATH, RUN_EXPIRED_PROBLEM } from '../core/wire.js';
import { PREPARED_FILES } from './prepare.js';
import type { TokenServiceProbe } from './sources/probe.js';

/**
 * `oz doctor`: everything that would make this run fail, each with what was found and how to
 * fix it. The checks return data and never print; the CLI renders them. The network is reached
 * only through the functions passed in, each bounded, so that an offline sandbox gets its
 * answer in seconds.
 */

export type Status = 'ok' | 'warn' | 'fail';

export interface Check {
  id: string;
  status: Status;
  finding: string;
  /** What to do about it; absent when there is nothing to do. */
  fix?: string;
}

export interface DoctorInput {
  env: Env;
  now: Date;
  /** The directory prepare writes to (--dir, OZ_PREPARE_DIR or its default). */
  prepareDir: string;
  /** The embedded issuer's key, read without creating one; undefined when there is none yet. */
  localKey(): Promise<{ kid: string; alg: string; dir: string } | undefined>;
  fetchJson(url: string): Promise<unknown>;
  probeTokenService(audience: string): Promise<TokenServiceProbe>;
}

export interface DoctorReport {
  mode: 'embedded' | 'remote';
  checks: Check[];
}

/** Less than this left in the run, or in a prepared token, is a warning. */
export const LOW_TIME_SECONDS = 5 * 60;

/**
 * The audience of the token service check: one no relying party accepts, so a token issued for
 * it is worth nothing. A service with an audience allow-list checks the run token first and then
 * refuses it with 403, which proves as much as a token would.
 */
export const PROBE_AUDIENCE = 'oz:doctor';

/** Variables with which the AWS SDKs and CLI find credentials before web identity. */
const AWS_STATIC = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
const AWS_PROFILES = ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE'];

const ok = (id: string, finding: string): Check => ({ id, status: 'ok', finding });
const warn = (id: string, finding: string, fix: string): Check => ({ id, status: 'warn', finding, fix });
const fail = (id: string, finding: string, fix: string): Check => ({ id, status: 'fail', finding, fix });

const PREPARE_AGAIN = 'run `eval "$(oz federate prepare)"` again: it rewrites the files with fresh tokens';

export async function runDoctor(input: DoctorInput): Promise<DoctorReport> {
  const { env } = input;
  const remote = envValue(env, 'OZ_RUN_TOKEN') !== undefined;
  const checks: Check[] = [];
  const clouds = configuredClouds(env, input.prepareDir);
  const federating = clouds.length > 0;

  let issuer: string | undefined;
  let kid: string | undefined;
  let runClaims: Record<string, unknown> | undefined;
  if (remote) {
    const decoded = decodeJwt(envValue(env, 'OZ_RUN_TOKEN')!.trim());
    if (!decoded.ok) {
      checks.push(fail('run_token', `OZ_RUN_TOKEN is not a run token: ${decoded.problem}`, 'set OZ_RUN_TOKEN to the output of `oz issuer grant-run` (the platform does this when it starts a run)'));
    } else {
      runClaims = decoded.value.payload;
      kid = typeof decoded.value.header.kid === 'string' ? decoded.value.header.kid : undefined;
      issuer = typeof runClaims.iss === 'string' ? runClaims.iss.replace(/\/+$/, '') : undefined;
      checks.push(
        issuer === undefined
          ? fail('run_token', 'the run token has no "iss": there is no issuer to check', 'ask the platform for a run token made by `oz issuer grant-run`')
          : ok('run_token', `tokens come from the token service; the run token is for run ${quote(String(runClaims.run_id ?? '?'))}, issued by ${issuer}`),
      );
    }
  } else {
    try {
      issuer = readIssuerUrl(env);
    } catch (e) {
      checks.push(fail('issuer_url', describeCause(e), 'set OZ_ISSUER_URL to the https URL where the issuer is published, e.g. https://oidc.example.com'));
    }
    try {
      const key = await input.localKey();
      if (key === undefined) {
        checks.push(warn('signing_key', 'the embedded issuer has no signing key yet: the first token creates one, which relying parties then see only once the JWKS is published again', '`oz issuer init`, then publish the JWKS (`oz issuer publish` or `oz issuer serve`)'));
      } else {
        kid = key.kid;
        checks.push(ok('signing_key', `the embedded issuer signs with key ${key.kid} (${key.alg}) in ${key.dir}`));
      }
    } catch (e) {
      checks.push(fail('signing_key', describeCause(e), 'fix the data directory or key file named above (OZ_DATA_DIR), or create a key with `oz issuer init` in a private directory'));
    }
  }

  const network: Promise<Check[]>[] = [];
  if (issuer !== undefined) {
    checks.push(issuerUrlCheck(issuer, clouds));
    network.push(discoveryChecks(issuer, kid, federating, input));
  }
  if (remote && runClaims !== undefined) network.push(tokenServiceCheck(input).then((c) => [c]));
  const reached = await Promise.all(network);
  for (const c of reached) checks.push(...c);

  if (remote && issuer !== undefined) checks.push(runTokenIssuerCheck(issuer, env));
  checks.push(runTimeCheck(env, input.now, runClaims, remote));
  checks.push(awsKeysCheck(env, clouds.includes('aws')));
  checks.push(gcpCredentialsCheck(env, input.prepareDir, clouds.includes('gcp')));
  checks.push(...preparedFileChecks(env, input.prepareDir, input.now));
  return { mode: remote ? 'remote' : 'embedded', checks };
}

/** The clouds this environment federates with: set up for prepare, or prepared already. */
function configuredClouds(env: Env, dir: string): ('aws' | 'gcp' | 'azure')[] {
  const set = (...names: string[]) => names.some((n) => envValue(env, n) !== undefined);
  const clouds: ('aws' | 'gcp' | 'azure')[] = [];
  if (set('OZ_AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE') || existsSync(join(dir, PREPARED_FILES.awsToken))) clouds.push('aws');
  if (set('OZ_GCP_PROVIDER_ID') || existsSync(join(dir, PREPARED_FILES.gcpConfig))) clouds.push('gcp');
  if (set('OZ_AZURE_CLIENT_ID', 'AZURE_FEDERATED_TOKEN_FILE')) clouds.push('azure');
  return clouds;
}

/** Why AWS, GCP and Azure could not fetch discovery from this issuer URL, if they could not. */
export function issuerUrlProblems(issuer: string): string[] {
  const u = new URL(issuer);
  const problems: string[] = [];
  if (u.protocol !== 'https:') problems.push('is http');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isLoopback(host)) problems.push('names this machine (loopback)');
  else if (isPrivate(host)) problems.push('names a private address');
  return problems;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1' || host === '0.0.0.0';
}

function isPrivate(host: string): boolean {
  if (isIP(host) === 4) return /^(10\.|192\.168\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(host);
  if (isIP(host) === 6) return /^(f[cd]|fe[89ab])/i.test(host);
  // A name without a dot, or under a suffix kept for private networks, has no public DNS.
  return !host.includes('.') || /\.(local|internal|lan|home\.arpa|corp)$/i.test(host);
}

function issuerUrlCheck(issuer: string, clouds: readonly string[]): Check {
  const problems = issuerUrlProblems(issuer);
  if (problems.length === 0) return ok('issuer_url', `the issuer ${issuer} is public and https, as AWS, GCP and Azure require`);
  const finding = `the issuer ${issuer} ${problems.join(' and ')}: AWS, GCP and Azure fetch its discovery document and keys only from a public https URL`;
  const fix = 'host the issuer at a public https URL (`oz issuer publish --out DIR --issuer https://…`, or `oz issuer serve` behind TLS) and set OZ_ISSUER_URL to it';
  if (clouds.length > 0) return fail('issuer_url', `${finding} (configured here: ${clouds.join(', ')})`, fix);
  return warn('issuer_url', `${finding}; fine for local use, and no cloud is configured here`, fix);
}

async function discoveryChecks(issuer: string, kid: string | undefined, federating: boolean, input: DoctorInput): Promise<Check[]> {
  const url = `${issuer}${DISCOVERY_PATH}`;
  const unreachable = (id: string, what: string, fix: string) =>
    federating ? fail(id, what, fix) : warn(id, `${what}; only relying parties need it, and no cloud is configured here`, fix);
  let doc: Record<string, unknown>;
  try {
    doc = (await input.fetchJson(url)) as Record<string, unknown>;
  } catch (e) {
    return [unreachable('discovery', `cannot fetch the discovery document ${url}: ${describeCause(e)}`, 'publish it there (`oz issuer publish`, or run `oz issuer serve`), or set OZ_ISSUER_URL to where it is published; a proxy must let it through (HTTPS_PROXY, NO_PROXY)')];
  }
  if (doc === null || typeof doc !== 'object' || doc.issuer !== issuer) {
    const named = doc && typeof doc === 'object' ? quote(String(doc.issuer)) : 'nothing';
    return [fail('discovery', `the discovery document at ${url} names issuer ${named}, not ${issuer}: relying parties refuse tokens from a mismatched issuer`, 'publish the discovery document made with this issuer URL (`oz issuer publish --issuer ' + issuer + '`)')];
  }
  const checks = [ok('discovery', `the discovery document at ${url} names this issuer`)];
  const jwksUri = doc.jwks_uri;
  if (typeof jwksUri !== 'string') {
    checks.push(fail('jwks', `the discovery document at ${url} has no "jwks_uri"`, 'publish the discovery document oz makes (`oz issuer publish`)'));
    return checks;
  }
  let jwks: { keys?: unknown };
  try {
    jwks = (await input.fetchJson(jwksUri)) as { keys?: unknown };
    if (!jwks || !Array.isArray(jwks.keys)) throw new Error('it has no "keys" array');
  } catch (e) {
    checks.push(unreachable('jwks', `cannot fetch the JWKS ${jwksUri}: ${describeCause(e)}`, 'publish the JWKS where discovery says (`oz issuer publish`)'));
    return checks;
  }
  const kids = (jwks.keys as { kid?: unknown }[]).map((k) => k?.kid);
  if (kid === undefined) {
    checks.push(warn('jwks', `the JWKS at ${jwksUri} has ${kids.length} key(s); there is no signing key here to look for`, '`oz issuer init`, then publish the JWKS again'));
  } else if (kids.includes(kid)) {
    checks.push(ok('jwks', `the JWKS at ${jwksUri} holds the signing key ${kid}`));
  } else {
    checks.push(fail('jwks', `the JWKS at ${jwksUri} does not hold the signing key ${kid}: relying parties cannot verify the tokens`, 'publish the JWKS again after a rotation or init (`oz issuer publish`), or point OZ_ISSUER_URL at the issuer that holds this key'));
  }
  return checks;
}

async function tokenServiceCheck(input: DoctorInput): Promise<Check> {
  let probe: TokenServiceProbe;
  try {
    probe = await input.probeTokenService(PROBE_AUDIENCE);
  } catch (e) {
    if (isOzError(e)) return fail('token_service', e.message, 'fix the setting named above (OZ_TOKEN_URL, OZ_ISSUER_URL, OZ_TOKEN_TIMEOUT, the proxy variables)');
    throw e;
  }
  const at = `the token service at ${probe.url}`;
  if (!probe.answered) {
    return fail('token_service', `cannot reach ${at}: ${probe.reason}`, 'check OZ_TOKEN_URL (default: the issuer URL and /v1/token), that the service is up, and that the proxy lets it through (HTTPS_PROXY, NO_PROXY)');
  }
  const { status, problem } = probe;
  if (status === 200) return ok('token_service', `${at} accepted the run token (a test token for audience ${PROBE_AUDIENCE} was issued and discarded)`);
  if (status === 403) return ok('token_service', `${at} accepted the run token (and, with its audience allow-list, refused the test audience ${PROBE_AUDIENCE}: ${probe.failure})`);
  if (status === 401 && problem.type === RUN_EXPIRED_PROBLEM) return fail('token_service', `${at} says the run is over: ${probe.failure}`, 'start a new run: no token can be issued for this one');
  if (status === 401) return fail('token_service', `${at} refused the run token: ${probe.failure}`, 'the run token is not one this service accepts: check OZ_TOKEN_URL, or ask the platform for a fresh OZ_RUN_TOKEN');
  if (status === 429) return warn('token_service', `${at} is rate limiting this run: ${probe.failure}`, 'make fewer token requests (prepare writes files that last the run)');
  return fail('token_service', `${at} answered ${probe.failure}`, status >= 500 ? 'the service is failing: ask its operator' : 'check OZ_TOKEN_URL: it should be the token endpoint, e.g. https://oidc.example.com/v1/token');
}

function runTokenIssuerCheck(iss: string, env: Env): Check {
  const set = envValue(env, 'OZ_ISSUER_URL');
  if (set === undefined) return ok('run_token_issuer', `OZ_ISSUER_URL is not set; the run token's issuer is ${iss}`);
  if (set.replace(/\/+$/, '') === iss) return ok('run_token_issuer', `the run token's "iss" is OZ_ISSUER_URL (${iss})`);
  return fail(
    'run_token_issuer',
    `the run token's "iss" ${quote(iss)} is not OZ_ISSUER_URL ${quote(set)}: tokens name the one issuer while this sandbox (and the trust set up for it) points at the other`,
    `set OZ_ISSUER_URL=${iss}, or unset it`,
  );
}

function runTimeCheck(env: Env, now: Date, runClaims: Record<string, unknown> | undefined, remote: boolean): Check {
  let deadline: Date | undefined;
  let source: string;
  if (remote) {
    if (runClaims === undefined) return fail('run_time', 'the run token cannot be read, so the time left is unknown', 'see run_token above');
    const exp = runClaims.exp;
    deadline = typeof exp === 'number' ? new Date(exp * 1000) : undefined;
    source = "the run token's expiry";
  } else {
    try {
      deadline = readRunLimits(env).deadline.value;
    } catch (e) {
      return fail('run_time', describeCause(e), 'set OZ_RUN_DEADLINE to an RFC 3339 time or Unix seconds, and OZ_MAX_RUN_DURATION to a duration such as 4h');
    }
    source = 'OZ_RUN_DEADLINE';
  }
  if (deadline === undefined) return ok('run_time', `no deadline (${source}): tokens are capped at the maximum run duration`);
  const left = Math.floor((deadline.getTime() - now.getTime()) / 1000);
  const at = deadline.toISOString().replace(/\.000Z$/, 'Z');
  if (left < 1) return fail('run_time', `the run's deadline ${at} (${source}) passed ${formatDuration(-left)} ago: no token can be issued for this run`, 'start a new run');
  if (left < LOW_TIME_SECONDS) return warn('run_time', `only ${formatDuration(left)} left before the run's deadline ${at} (${source})`, 'finish soon, or start a new run: tokens cannot outlive the run');
  return ok('run_time', `${formatDuration(left)} left before the run's deadline ${at} (${source})`);
}

function awsKeysCheck(env: Env, awsFederating: boolean): Check {
  const statics = AWS_STATIC.filter((n) => envValue(env, n) !== undefined);
  const profiles = AWS_PROFILES.filter((n) => envValue(env, n) !== undefined);
  // Names only: the values are secrets.
  if (statics.length > 0) {
    const finding = `${statics.join(', ')} ${statics.length === 1 ? 'is' : 'are'} set: the AWS SDKs and CLI use static keys before web identity, so the role is never assumed`;
    const fix = `unset ${statics.join(' ')}`;
    return awsFederating ? fail('aws_static_keys', finding, fix) : warn('aws_static_keys', `${finding} (no AWS role is configured here)`, fix);
  }
  if (profiles.length > 0) {
    return warn('aws_static_keys', `${profiles.join(', ')} ${profiles.length === 1 ? 'is' : 'are'} set: a profile with credentials in ~/.aws comes before web identity`, `unset ${profiles.join(' ')} unless that profile uses web identity`);
  }
  return ok('aws_static_keys', 'no static AWS keys or profile shadow web identity');
}

function gcpCredentialsCheck(env: Env, dir: string, gcpFederating: boolean): Check {
  const prepared = join(dir, PREPARED_FILES.gcpConfig);
  const gac = envValue(env, 'GOOGLE_APPLICATION_CREDENTIALS');
  if (gac === undefined) {
    if (existsSync(prepared)) return warn('gcp_credentials', `prepare wrote ${prepared}, but GOOGLE_APPLICATION_CREDENTIALS is not set here: Google's libraries will not find it`, 'run `eval "$(oz federate prepare)"` in this shell');
    return ok('gcp_credentials', 'GOOGLE_APPLICATION_CREDENTIALS is not set');
  }
  if (!existsSync(gac)) {
    return fail('gcp_credentials', `GOOGLE_APPLICATION_CREDENTIALS names ${quote(gac)}, which does not exist`, 'run `eval "$(oz federate prepare)"` again, or unset GOOGLE_APPLICATION_CREDENTIALS');
  }
  if (resolve(gac) === resolve(prepared)) return ok('gcp_credentials', `GOOGLE_APPLICATION_CREDENTIALS is the config prepare wrote (${prepared})`);
  if (gcpFederating) {
    return fail('gcp_credentials', `GOOGLE_APPLICATION_CREDENTIALS points to ${quote(gac)}, not to the config prepare writes (${prepared}): Google's libraries and gcloud use that file instead`, `export GOOGLE_APPLICATION_CREDENTIALS=${prepared}, or run \`eval "$(oz federate prepare)"\` again`);
  }
  return ok('gcp_credentials', `GOOGLE_APPLICATION_CREDENTIALS points to ${quote(gac)} (not oz's; no GCP federation is configured here)`);
}

/**
 * The files prepare writes (and any token file beside them), and those the environment names:
 * present when a cloud needs them, readable, and holding a token that has not expired.
 */
function preparedFileChecks(env: Env, dir: string, now: Date): Check[] {
  const checks: Check[] = [];
  const files = new Map<string, { required: string | undefined }>();
  const need = (path: string, why: string | undefined) => files.set(resolve(path), { required: files.get(resolve(path))?.required ?? why });
  if (envValue(env, 'OZ_AWS_ROLE_ARN') !== undefined) need(join(dir, PREPARED_FILES.awsToken), 'OZ_AWS_ROLE_ARN is set');
  if (envValue(env, 'OZ_GCP_PROVIDER_ID') !== undefined) need(join(dir, PREPARED_FILES.gcpConfig), 'OZ_GCP_PROVIDER_ID is set');
  for (const v of ['AWS_WEB_IDENTITY_TOKEN_FILE', 'AZURE_FEDERATED_TOKEN_FILE']) {
    const path = envValue(env, v);
    if (path !== undefined) need(path, `${v} names it`);
  }
  let listed: string[] = [];
  try {
    if (statSync(dir).isDirectory()) listed = readdirSync(dir);
  } catch {
    // No directory: nothing prepared yet, which the required files below report.
  }
  // The GCP executable's output cache may well be stale: Google's libraries then run oz again.
  // Nor are a write in progress (`*.tmp`, renamed into place a moment later) and hidden files.
  for (const name of listed) if (name !== PREPARED_FILES.gcpCache && !name.startsWith('.') && !name.endsWith('.tmp')) need(join(dir, name), undefined);

  for (const [path, { required }] of files) {
    const id = `file:${path.startsWith(resolve(dir) + '/') ? path.slice(resolve(dir).length + 1) : path}`;
    let text: string;
    try {
      // Never a symlink, and never a FIFO planted there that would keep doctor waiting.
      text = readFileNoFollow(path).toString('utf8');
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      if (required !== undefined) {
        checks.push(fail(id, `${path} is ${missing ? 'missing' : `unreadable (${describeCause(e)})`}, and ${required}`, missing ? 'run `eval "$(oz federate prepare)"`' : `fix the file's permissions, or ${PREPARE_AGAIN}`));
      }
      continue;
    }
    if (path.endsWith('.json')) {
      checks.push(credentialConfigCheck(id, path, text));
      continue;
    }
    const decoded = decodeJwt(text.trim());
    if (!decoded.ok) {
      if (required !== undefined) checks.push(fail(id, `${path} holds no token: ${decoded.problem}`, PREPARE_AGAIN));
      continue;
    }
    const exp = decoded.value.payload.exp;
    const aud = decoded.value.payload.aud;
    const forAud = typeof aud === 'string' ? ` for ${quote(aud)}` : '';
    if (typeof exp !== 'number') {
      checks.push(fail(id, `the token in ${path}${forAud} has no expiry`, PREPARE_AGAIN));
      continue;
    }
    const left = Math.floor(exp - now.getTime() / 1000);
    const at = new Date(exp * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    if (left < 1) checks.push(fail(id, `the token in ${path}${forAud} expired at ${at}, ${formatDuration(-left)} ago`, PREPARE_AGAIN));
    else if (left < LOW_TIME_SECONDS) checks.push(warn(id, `the token in ${path}${forAud} expires in ${formatDuration(left)} (${at})`, PREPARE_AGAIN));
    else checks.push(ok(id, `the token in ${path}${forAud} is valid for ${formatDuration(left)} (until ${at})`));
  }
  if (files.size === 0) checks.push(ok('prepared_files', `nothing prepared in ${dir}, and no cloud asks for it`));
  return checks;
}

function credentialConfigCheck(id: string, path: string, text: string): Check {
  let config: { type?: unknown; credential_source?: { executable?: { command?: unknown } } };
  try {
    config = JSON.parse(text) as typeof config;
  } catch {
    return fail(id, `${path} is not JSON`, PREPARE_AGAIN);
  }
  if (config?.type !== 'external_account') return ok(id, `${path} is present (${quote(String(config?.type))})`);
  const command = config.credential_source?.executable?.command;
  if (typeof command === 'string') {
    const program = command.split(/\s+/)[0]!;
    try {
      accessSync(program, constants.X_OK);
    } catch {
      return fail(id, `${path} runs ${quote(program)}, which is not an executable here: Google's libraries cannot get a token`, `${PREPARE_AGAIN} (set OZ_EXECUTABLE if oz lives elsewhere)`);
    }
  }
  return ok(id, `${path} is an external_account config${typeof command === 'string' ? ' whose executable is present' : ''}`);
}
