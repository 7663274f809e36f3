// The real AWS and Google clients, pointed at the loopback stand-ins with hand-made inputs of the
// shape `oz federate prepare` is to produce. If these pass, a failure later in the oz end-to-end
// tests is oz's fault, not the harness's.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  awsWebIdentityEnv,
  executableSuccess,
  gcloudPrintAccessToken,
  googleAuthNodeAccessToken,
  makeTempDir,
  resolveAwsJs,
  resolveBoto3,
  writeExternalAccountConfig,
  writeFakeExecutable,
  writeWebIdentityTokenFile,
} from './helpers/clients.js';
import { startAwsSts, startGcpSts } from './helpers/standins.js';
import type { AwsStsStandIn, GcpStsStandIn } from './helpers/standins.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/oz-agent';
const SESSION = 'Oz_Run_run-7f3a';
const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
const SERVICE_ACCOUNT = 'agent@oz-project.iam.gserviceaccount.com';

let issuer: TestIssuer;
let aws: AwsStsStandIn;
let gcp: GcpStsStandIn;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  issuer = await startTestIssuer();
  aws = await startAwsSts({ trustedIssuers: [issuer.url] });
  gcp = await startGcpSts({
    trustedIssuer: issuer.url,
    audience: PROVIDER,
    attributeCondition: (c) => Array.isArray(c.teams) && c.teams.includes('team-a'),
    canImpersonate: (sa) => sa === SERVICE_ACCOUNT,
  });
  ({ dir, cleanup } = await makeTempDir('oz-real-clients-'));
});

afterAll(async () => {
  await Promise.all([issuer?.close(), aws?.close(), gcp?.close()]);
  await cleanup?.();
});

let files = 0;
const fresh = (name: string) => path.join(dir, `${++files}-${name}`);

async function awsEnvFor(token: string, extra: { stsUrl?: string | null } = {}) {
  const tokenFile = await writeWebIdentityTokenFile(fresh('aws-token'), token);
  return awsWebIdentityEnv({ roleArn: ROLE_ARN, tokenFile, sessionName: SESSION, stsUrl: extra.stsUrl === null ? undefined : (extra.stsUrl ?? aws.url) });
}

const awsToken = (claims: Record<string, unknown> = {}) => issuer.token({ sub: 'user-1', aud: 'sts.amazonaws.com', ...claims });

describe('AWS SDK for JavaScript v3', () => {
  it.each(['fromTokenFile', 'fromNodeProviderChain'] as const)('%s gets credentials from the env vars alone', async (provider) => {
    const env = await awsEnvFor(awsToken({ sub: `js-${provider}` }));
    const r = await resolveAwsJs({ provider, env });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    const issued = aws.issued.get(r.value.accessKeyId);
    expect(issued).toMatchObject({ roleSessionName: SESSION, subject: `js-${provider}`, roleArn: ROLE_ARN });
    expect(r.value.secretAccessKey).toBe(issued!.secretAccessKey);
    expect(r.value.sessionToken).toBe(issued!.sessionToken);
    expect(r.value.accountId).toBe('123456789012');
    expect(Date.parse(r.value.expiration!)).toBe(Date.parse(issued!.expiration));
    const rec = aws.requests.find((q) => q.credentials?.accessKeyId === r.value.accessKeyId)!;
    expect(rec.userAgent).toMatch(/aws-sdk-js/);
    expect(rec.params).toMatchObject({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleSessionName: SESSION });
  });

  it('also reaches STS through clientConfig.endpoint, without AWS_ENDPOINT_URL_STS', async () => {
    const env = await awsEnvFor(awsToken(), { stsUrl: null });
    const r = await resolveAwsJs({ provider: 'fromTokenFile', env, clientConfig: { endpoint: aws.url } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it.each(['fromTokenFile', 'fromNodeProviderChain'] as const)('%s surfaces STS refusing a token for the wrong audience', async (provider) => {
    const env = await awsEnvFor(awsToken({ aud: 'not-sts' }));
    const r = await resolveAwsJs({ provider, env });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatchObject({ name: 'InvalidIdentityTokenException', message: 'Incorrect token audience', status: 400 });
  });

  it('sends the token file untrimmed, so a trailing newline is refused', async () => {
    const env = await awsEnvFor(`${awsToken()}\n`);
    const r = await resolveAwsJs({ provider: 'fromTokenFile', env });
    expect(r.ok).toBe(false);
    expect(aws.requests.at(-1)!.params.WebIdentityToken!.endsWith('\n')).toBe(true);
    if (!r.ok) expect(r.error.name).toBe('InvalidIdentityTokenException');
  });
});

describe('boto3 (Debian botocore)', () => {
  it('resolves web identity credentials from the env vars alone', async () => {
    const env = await awsEnvFor(awsToken({ sub: 'py-creds' }));
    const r = await resolveBoto3({ env });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.value.method).toBe('assume-role-with-web-identity');
    expect(aws.issued.get(r.value.accessKeyId)).toMatchObject({ subject: 'py-creds', roleSessionName: SESSION });
    expect(r.value.secretAccessKey).toBe(aws.issued.get(r.value.accessKeyId)!.secretAccessKey);
  });

  it('signs GetCallerIdentity with those credentials', async () => {
    // botocore 1.29 reads the region only from AWS_DEFAULT_REGION (AWS_REGION is ignored); the
    // credential exchange itself needs no region, but any client call does.
    const env = { ...(await awsEnvFor(awsToken({ sub: 'py-user' }))), AWS_DEFAULT_REGION: 'us-east-1' };
    const r = await resolveBoto3({ env, getCallerIdentity: true });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(aws.issued.get(r.value.accessKeyId)).toMatchObject({ subject: 'py-user', roleSessionName: SESSION });
    expect(r.value.identity).toMatchObject({ Arn: `arn:aws:sts::123456789012:assumed-role/oz-agent/${SESSION}`, Account: '123456789012' });
    expect(aws.requests.at(-1)).toMatchObject({ action: 'GetCallerIdentity', ok: true, subject: 'py-user' });
    expect(aws.requests.at(-1)!.userAgent).toMatch(/Boto3\/|botocore\//);
  });

  it('surfaces an expired token as ExpiredTokenException', async () => {
    const t = Math.floor(Date.now() / 1000);
    const env = await awsEnvFor(awsToken({ iat: t - 7200, nbf: t - 7200, exp: t - 10 }));
    const r = await resolveBoto3({ env });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ code: 'ExpiredTokenException', status: 400 });
  });

  it('sends the token file untrimmed too', async () => {
    const env = await awsEnvFor(`${awsToken()}\n`);
    const r = await resolveBoto3({ env });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('InvalidIdentityToken');
  });
});

const gcpToken = (claims: Record<string, unknown> = {}) =>
  issuer.token({ sub: 'gcp-user', aud: `https:${PROVIDER}`, teams: ['team-a'], ...claims });

async function gcpConfig(token: string, opts: { impersonate?: boolean; stderr?: string } = {}) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const exe = await writeFakeExecutable(dir, executableSuccess(token, exp), { name: `${++files}-fake-oz.sh`, stderr: opts.stderr });
  const file = await writeExternalAccountConfig(fresh('gcp.json'), {
    audience: PROVIDER,
    tokenUrl: gcp.tokenUrl,
    tokenInfoUrl: gcp.tokenInfoUrl,
    serviceAccountImpersonationUrl: opts.impersonate ? gcp.impersonationUrl(SERVICE_ACCOUNT) : undefined,
    command: exe.path,
    timeoutMillis: 30_000,
    outputFile: fresh('gcp-cache.json'),
  });
  return { file, exe };
}

describe('google-auth-library for Node', () => {
  const adcEnv = (file: string) => ({
    GOOGLE_APPLICATION_CREDENTIALS: file,
    GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1',
    GOOGLE_CLOUD_PROJECT: 'oz-project',
  });

  it('runs the executable and exchanges its token at the stand-in', async () => {
    const { file, exe } = await gcpConfig(gcpToken({ sub: 'node-user' }));
    const r = await googleAuthNodeAccessToken({ env: adcEnv(file) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.value.clientType).toBe('PluggableAuthClient');
    expect(r.value.projectId).toBe('oz-project');
    expect(gcp.issued.get(r.value.token)).toMatchObject({ kind: 'federated', subject: 'node-user' });
    const rec = gcp.requests.find((q) => q.issued?.accessToken === r.value.token)!;
    expect(rec.params).toMatchObject({ audience: PROVIDER, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(rec.scopes).toEqual(['https://www.googleapis.com/auth/cloud-platform']);
    const calls = (await readFile(exe.callsLog, 'utf8')).trim().split('\n');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(new RegExp(`^${PROVIDER}\\|urn:ietf:params:oauth:token-type:jwt\\|0\\|.*gcp-cache\\.json$`));
  });

  it('impersonates the service account through service_account_impersonation_url', async () => {
    const { file } = await gcpConfig(gcpToken({ sub: 'node-imp' }), { impersonate: true });
    const r = await googleAuthNodeAccessToken({ env: adcEnv(file) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(gcp.issued.get(r.value.token)).toMatchObject({ kind: 'service-account', serviceAccount: SERVICE_ACCOUNT, subject: 'node-imp' });
  });

  it('surfaces the stand-in refusing a token for the wrong audience', async () => {
    const { file } = await gcpConfig(gcpToken({ aud: 'sts.amazonaws.com' }));
    const r = await googleAuthNodeAccessToken({ env: adcEnv(file) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/invalid_grant.*does not match the expected audience/);
  });

  it('surfaces the attribute condition refusing the teams claim', async () => {
    const { file } = await gcpConfig(gcpToken({ teams: ['team-b'] }));
    const r = await googleAuthNodeAccessToken({ env: adcEnv(file) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/rejected by the attribute condition/);
  });

  it('refuses to run the executable without GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1', async () => {
    const { file, exe } = await gcpConfig(gcpToken());
    const r = await googleAuthNodeAccessToken({ env: { ...adcEnv(file), GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: undefined } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES/);
    await expect(readFile(exe.callsLog, 'utf8')).rejects.toThrow();
  });

  it('merges the executable stderr into the response it parses', async () => {
    const { file } = await gcpConfig(gcpToken(), { stderr: 'a warning\n' });
    const r = await googleAuthNodeAccessToken({ env: adcEnv(file) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/invalid response/);
  });
});

describe('gcloud', () => {
  const gcloudEnv = (file: string) => ({
    CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: file,
    GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1',
    CLOUDSDK_CORE_PROJECT: 'oz-project',
  });

  it('prints the access token the stand-in issued', { timeout: 60_000 }, async () => {
    const { file, exe } = await gcpConfig(gcpToken({ sub: 'gcloud-user' }));
    const before = gcp.requests.length;
    const r = await gcloudPrintAccessToken({ env: gcloudEnv(file) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(gcp.issued.get(r.value.token)).toMatchObject({ kind: 'federated', subject: 'gcloud-user' });
    const made = gcp.requests.slice(before);
    // gcloud names the account by introspecting the federated token at token_info_url.
    expect(made.map((q) => q.endpoint)).toEqual(expect.arrayContaining(['token', 'introspect']));
    expect(made.every((q) => q.ok)).toBe(true);
    // Without impersonation gcloud authenticates as its own OAuth client on both calls.
    expect(made.find((q) => q.endpoint === 'token')!.clientId).toMatch(/\.apps\.googleusercontent\.com$/);
    expect(made.find((q) => q.endpoint === 'token')!.scopes).toContain('https://www.googleapis.com/auth/cloud-platform');
    expect((await readFile(exe.callsLog, 'utf8')).trim().split('\n').length).toBeGreaterThanOrEqual(1);
  });

  it('prints a service account token through impersonation', { timeout: 60_000 }, async () => {
    const { file } = await gcpConfig(gcpToken({ sub: 'gcloud-imp' }), { impersonate: true });
    const before = gcp.requests.length;
    const r = await gcloudPrintAccessToken({ env: gcloudEnv(file) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(gcp.issued.get(r.value.token)).toMatchObject({ kind: 'service-account', serviceAccount: SERVICE_ACCOUNT, subject: 'gcloud-imp' });
    // The account is the service account, so there is nothing to introspect.
    expect(gcp.requests.slice(before).map((q) => q.endpoint)).toEqual(['token', 'generateAccessToken']);
  });

  it('fails with the stand-in refusal for the wrong audience', { timeout: 60_000 }, async () => {
    const { file } = await gcpConfig(gcpToken({ aud: 'sts.amazonaws.com' }));
    const r = await gcloudPrintAccessToken({ env: gcloudEnv(file) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/invalid_grant|does not match the expected audience/);
  });
});
