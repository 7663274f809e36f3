// `oz federate prepare` proven with the real consumers: the AWS SDK for JavaScript and boto3
// assume a role with the token file, google-auth-library and gcloud run oz as their
// executable-sourced credential. Each talks to a loopback stand-in for STS that verifies oz's
// tokens through `oz issuer serve`'s discovery document and JWKS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OZ_BIN, run, scrubbedEnv, tempDir, decode } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { startAwsSts, startGcpSts, type AwsStsStandIn, type GcpStsStandIn } from '../helpers/standins.js';
import { gcloudPrintAccessToken, googleAuthNodeAccessToken, resolveAwsJs, resolveBoto3 } from '../helpers/clients.js';

const ROLE = 'arn:aws:iam::123456789012:role/oz-agent';
const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
const GCP_FLAGS = ['--gcp-project-number', '123456789012', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider', '--gcp-project-id', 'my-project'];
const SA = 'agent@my-project.iam.gserviceaccount.com';

let home: string;
let runEnv: Record<string, string>;
let issuer: Served;
let aws: AwsStsStandIn;
let gcp: GcpStsStandIn;

beforeAll(async () => {
  home = tempDir('oz-prepare-clients-');
  runEnv = scrubbedEnv(home, {
    OZ_RUN_ID: 'run 7/ünï',
    OZ_SUBJECT: 'user-42',
    OZ_TEAMS: 'team-a',
    OZ_PREPARE_DIR: join(home, 'prepared'),
  });
  issuer = await serve(runEnv);
  runEnv.OZ_ISSUER_URL = issuer.url;
  aws = await startAwsSts({ trustedIssuers: [issuer.url] });
  gcp = await startGcpSts({
    trustedIssuer: issuer.url,
    audience: PROVIDER,
    attributeCondition: (c) => Array.isArray(c.teams) && c.teams.includes('team-a'),
    canImpersonate: (sa) => sa === SA,
  });
});

afterAll(async () => {
  await Promise.all([aws?.close(), gcp?.close(), issuer?.stop()]);
});

/** What a shell init script gets: the exports of `eval "$(oz federate prepare …)"`, read back from sh. */
async function prepared(args: string[], extra: Record<string, string> = {}, base = runEnv): Promise<Record<string, string>> {
  const env = { ...base, ...extra };
  const r = await run('/bin/sh', ['-c', `eval "$("${OZ_BIN}" federate prepare ${args.join(' ')})" || exit 9; env -0`], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const all = Object.fromEntries(r.stdout.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(all).filter(([k]) => !(k in env)));
}

/**
 * A copy of prepare's GCP config with only the Google endpoints moved to the stand-in, as a
 * test must: everything oz wrote (audience, token type, the executable, its cache) is kept.
 */
function configAtStandIn(configFile: string, moveImpersonation = false): string {
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.token_url = gcp.tokenUrl;
  if (config.token_info_url) config.token_info_url = gcp.tokenInfoUrl;
  if (moveImpersonation) config.service_account_impersonation_url = gcp.impersonationUrl(SA);
  const copy = join(home, `config-${Date.now()}-${Math.random()}.json`);
  writeFileSync(copy, JSON.stringify(config), { mode: 0o600 });
  return copy;
}

describe('AWS: web identity from the token file prepare wrote', () => {
  let vars: Record<string, string>;
  beforeAll(async () => {
    vars = await prepared([`--aws-role-arn ${ROLE}`]);
  });

  it.each(['fromTokenFile', 'fromNodeProviderChain'] as const)('the AWS SDK for JavaScript (%s) assumes the role', async (provider) => {
    const before = aws.requests.length;
    const r = await resolveAwsJs({ provider, env: { ...vars, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const req = aws.requests.slice(before).find((q) => q.ok);
    expect(req).toMatchObject({ roleArn: ROLE, roleSessionName: vars.AWS_ROLE_SESSION_NAME, subject: 'user-42' });
    expect(r.ok && r.value.accessKeyId).toBe(req!.credentials!.accessKeyId);
    expect(vars.AWS_ROLE_SESSION_NAME).toMatch(/^Oz_Run_run-7--n-.*\.[0-9a-f]{12}$/);
  });

  it('boto3 assumes the role', async () => {
    const before = aws.requests.length;
    const r = await resolveBoto3({ env: { ...vars, AWS_DEFAULT_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url }, getCallerIdentity: true });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const req = aws.requests.slice(before).find((q) => q.action === 'AssumeRoleWithWebIdentity' && q.ok);
    expect(req).toMatchObject({ roleSessionName: vars.AWS_ROLE_SESSION_NAME, subject: 'user-42' });
  });

  it('STS refuses the token once a byte is added, so the file must hold it exactly', async () => {
    const file = vars.AWS_WEB_IDENTITY_TOKEN_FILE!;
    const bytes = readFileSync(file, 'utf8');
    expect(bytes.endsWith('\n')).toBe(false);
    const withNewline = join(home, 'token-with-newline');
    writeFileSync(withNewline, `${bytes}\n`, { mode: 0o600 });
    const r = await resolveAwsJs({
      provider: 'fromTokenFile',
      env: { ...vars, AWS_WEB_IDENTITY_TOKEN_FILE: withNewline, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url },
    });
    expect(r.ok).toBe(false);
  });
});

describe('GCP: oz as the executable-sourced credential', () => {
  let vars: Record<string, string>;
  beforeAll(async () => {
    vars = await prepared(GCP_FLAGS);
  });

  it('google-auth-library gets an access token, running oz itself', async () => {
    const config = configAtStandIn(vars.GOOGLE_APPLICATION_CREDENTIALS!);
    const before = gcp.requests.length;
    const r = await googleAuthNodeAccessToken({ env: { ...runEnv, ...vars, GOOGLE_APPLICATION_CREDENTIALS: config } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const exchange = gcp.requests.slice(before).find((q) => q.endpoint === 'token' && q.ok)!;
    expect(exchange.subject).toBe('user-42');
    expect(exchange.claims).toMatchObject({ aud: `https:${PROVIDER}`, teams: ['team-a'], iss: issuer.url });
    expect(r.ok && r.value.token).toBe(exchange.issued!.accessToken);
    expect(r.ok && r.value.projectId).toBe('my-project');
    // oz cached its response where the config says, privately, for the library's next call.
    const cache = JSON.parse(readFileSync(join(runEnv.OZ_PREPARE_DIR!, 'gcp-executable-output.json'), 'utf8'));
    expect(cache).toMatchObject({ version: 1, success: true });
    expect(decode(cache.id_token).claims.sub).toBe('user-42');
    expect(statSync(join(runEnv.OZ_PREPARE_DIR!, 'gcp-executable-output.json')).mode & 0o777).toBe(0o600);
  });

  it('gcloud auth print-access-token works with the credential file override', async () => {
    const config = configAtStandIn(vars.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE!);
    const before = gcp.requests.length;
    const r = await gcloudPrintAccessToken({ env: { ...runEnv, ...vars, CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: config } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const exchange = gcp.requests.slice(before).find((q) => q.endpoint === 'token' && q.ok)!;
    expect(exchange.subject).toBe('user-42');
    expect(r.ok && r.value.token).toBe(exchange.issued!.accessToken);
    expect(gcp.requests.slice(before).some((q) => q.endpoint === 'introspect' && q.ok)).toBe(true);
  }, 90_000);

  it('service account impersonation works through google-auth-library', async () => {
    const saVars = await prepared([...GCP_FLAGS, `--gcp-service-account ${SA}`], { OZ_PREPARE_DIR: join(home, 'prepared-sa') });
    const config = configAtStandIn(saVars.GOOGLE_APPLICATION_CREDENTIALS!, true);
    const before = gcp.requests.length;
    const r = await googleAuthNodeAccessToken({ env: { ...runEnv, ...saVars, GOOGLE_APPLICATION_CREDENTIALS: config } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const sa = gcp.requests.slice(before).find((q) => q.endpoint === 'generateAccessToken' && q.ok);
    expect(sa?.serviceAccount).toBe(SA);
  });

  it("a run outside the provider's team is refused by GCP, and the library says so", async () => {
    const config = configAtStandIn(vars.GOOGLE_APPLICATION_CREDENTIALS!);
    // The response cached for team-a would otherwise be used instead of running oz.
    rmSync(join(runEnv.OZ_PREPARE_DIR!, 'gcp-executable-output.json'), { force: true });
    const r = await googleAuthNodeAccessToken({ env: { ...runEnv, OZ_TEAMS: 'team-b', ...vars, GOOGLE_APPLICATION_CREDENTIALS: config } });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.message).toMatch(/invalid_grant/);
  });

  it('a run past its deadline: the library reports oz\'s structured failure, not a parse error', async () => {
    const config = configAtStandIn(vars.GOOGLE_APPLICATION_CREDENTIALS!);
    const cache = join(runEnv.OZ_PREPARE_DIR!, 'gcp-executable-output.json');
    rmSync(cache, { force: true });
    const r = await googleAuthNodeAccessToken({
      env: { ...runEnv, OZ_RUN_DEADLINE: '2001-01-01T00:00:00Z', ...vars, GOOGLE_APPLICATION_CREDENTIALS: config },
    });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.message).toMatch(/run_expired/);
    expect(existsSync(cache)).toBe(false);
  });
});

describe('with the token service: the grant, not the sandbox, says who the run is', () => {
  let sandboxEnv: Record<string, string>;
  beforeAll(async () => {
    // The operator's side: a grant minted with the issuer's own key store and URL.
    const g = await run(OZ_BIN, ['issuer', 'grant-run', '--run-id', 'run-77', '--subject', 'user-77', '--teams', 'team-a', '--max-duration', '1h'], {
      env: runEnv,
    });
    expect(g.code).toBe(0);
    // The sandbox's side: no key, claim variables that lie, and only the run token to go on.
    const sandboxHome = tempDir('oz-sandbox-');
    sandboxEnv = scrubbedEnv(sandboxHome, {
      OZ_RUN_TOKEN: g.stdout.trim(),
      OZ_ISSUER_URL: issuer.url,
      OZ_SUBJECT: 'admin',
      OZ_TEAMS: 'team-a',
      OZ_RUN_ID: 'forged',
      OZ_PREPARE_DIR: join(sandboxHome, 'prepared'),
    });
  });

  it('the AWS SDK assumes the role as the granted subject, in a session named after the granted run', async () => {
    const vars = await prepared([`--aws-role-arn ${ROLE}`], {}, sandboxEnv);
    expect(vars.AWS_ROLE_SESSION_NAME).toBe('Oz_Run_run-77');
    const before = aws.requests.length;
    const r = await resolveAwsJs({ provider: 'fromNodeProviderChain', env: { ...vars, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    expect(aws.requests.slice(before).find((q) => q.ok)).toMatchObject({ subject: 'user-77', roleSessionName: 'Oz_Run_run-77' });
  });

  it('google-auth-library runs oz, which asks the token service, as the granted subject', async () => {
    const vars = await prepared(GCP_FLAGS, {}, sandboxEnv);
    const config = configAtStandIn(vars.GOOGLE_APPLICATION_CREDENTIALS!);
    const before = gcp.requests.length;
    const r = await googleAuthNodeAccessToken({ env: { ...sandboxEnv, ...vars, GOOGLE_APPLICATION_CREDENTIALS: config } });
    expect(r.ok ? undefined : r.error).toBeUndefined();
    const exchange = gcp.requests.slice(before).find((q) => q.endpoint === 'token' && q.ok)!;
    expect(exchange.subject).toBe('user-77');
    expect(exchange.claims).toMatchObject({ run_id: 'run-77', iss: issuer.url, aud: `https:${PROVIDER}` });
  });
});
