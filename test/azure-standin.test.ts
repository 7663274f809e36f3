// The Entra ID stand-in, judged first on its own and then through Azure's real client library,
// given exactly the variables `oz federate prepare --azure-*` is to export. Every child runs
// behind a proxy trap, so a test also shows what the library tries to reach beyond loopback.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureIdentityToken, azureWorkloadIdentityEnv } from './helpers/azure-clients.js';
import { makeTempDir, writeWebIdentityTokenFile } from './helpers/clients.js';
import { AZURE_AD_TOKEN_EXCHANGE, CLIENT_ASSERTION_TYPE_JWT_BEARER, startEntraBehindTrap, startEntraStandIn } from './helpers/entra.js';
import type { EntraStandIn } from './helpers/entra.js';
import type { ProxyTrap } from './helpers/proxy-trap.js';
import { decode, oz, scrubbedEnv as ozScrubbedEnv, tempDir as ozTempDir } from './helpers/oz.js';
import { serve } from './helpers/serve.js';
import type { Served } from './helpers/serve.js';
import type { TestCertificates } from './helpers/tls.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const OTHER_CLIENT = '11111111-2222-4333-8444-555555555555';
const SUBJECT = 'teams:abc123:sub:user-42';
const SCOPE = 'https://management.azure.com/.default';

let issuer: TestIssuer;
let certs: TestCertificates;
let entra: EntraStandIn;
let trap: ProxyTrap;
let dir: string;
let cleanup: () => Promise<void>;
let closeEntra: () => Promise<void>;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ({ certs, entra, trap, close: closeEntra } = await startEntraBehindTrap({
    tenantId: TENANT,
    applications: {
      [CLIENT]: [
        { name: 'oz-run', issuer: issuer.url, subject: SUBJECT },
        { name: 'other', issuer: issuer.url, subject: 'teams:other:sub:user-1' },
      ],
      [OTHER_CLIENT]: [{ issuer: 'https://token.actions.githubusercontent.com', subject: SUBJECT }],
    },
  }));
  ({ dir, cleanup } = await makeTempDir('oz-azure-'));
});

afterAll(async () => {
  await Promise.all([issuer?.close(), closeEntra?.(), cleanup?.()]);
});

const now = () => Math.floor(Date.now() / 1000);
const azureToken = (claims: Record<string, unknown> = {}, opts = {}) => issuer.token({ sub: SUBJECT, aud: AZURE_AD_TOKEN_EXCHANGE, ...claims }, opts);

let files = 0;
async function envFor(token: string, clientId = CLIENT) {
  const tokenFile = await writeWebIdentityTokenFile(path.join(dir, `${++files}-azure-token`), token);
  return azureWorkloadIdentityEnv({ clientId, tenantId: TENANT, tokenFile, authorityHost: entra.url });
}

async function post(form: Record<string, string | undefined>, tenant = TENANT) {
  const body = new URLSearchParams();
  const all = { client_id: CLIENT, grant_type: 'client_credentials', scope: SCOPE, client_assertion_type: CLIENT_ASSERTION_TYPE_JWT_BEARER, ...form };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) body.set(k, v);
  const dispatcher = new Agent({ connect: { ca: certs.caPem } });
  const res = await request(`${entra.url}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    body: body.toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    dispatcher,
  });
  const json = (await res.body.json()) as Record<string, unknown>;
  await dispatcher.close();
  return { status: res.statusCode, body: json };
}

async function get(url: string) {
  const dispatcher = new Agent({ connect: { ca: certs.caPem } });
  const res = await request(url, { dispatcher });
  const json = (await res.body.json()) as Record<string, unknown>;
  await dispatcher.close();
  return { status: res.statusCode, body: json };
}

describe('Entra ID stand-in', () => {
  it('serves tenant discovery whose issuer is on the authority host, as MSAL requires', async () => {
    const r = await get(`${entra.url}/${TENANT}/v2.0/.well-known/openid-configuration`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      issuer: `${entra.url}/${TENANT}/v2.0`,
      token_endpoint: `${entra.url}/${TENANT}/oauth2/v2.0/token`,
      authorization_endpoint: `${entra.url}/${TENANT}/oauth2/v2.0/authorize`,
    });
    const unknown = await get(`${entra.url}/no-such-tenant/v2.0/.well-known/openid-configuration`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error_codes).toEqual([90002]);
  });

  it('answers instance discovery for Microsoft hosts only, as Entra does', async () => {
    const ask = (endpoint: string) => get(`${entra.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(endpoint)}`);
    const ms = await ask(`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/authorize`);
    expect(ms.status).toBe(200);
    expect(ms.body.tenant_discovery_endpoint).toBe(`https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`);
    const local = await ask(`${entra.url}/${TENANT}/oauth2/v2.0/authorize`);
    expect(local.status).toBe(400);
    expect(local.body).toMatchObject({ error: 'invalid_instance', error_codes: [50049] });
  });

  it('exchanges a matching RS256 assertion for an access token in Entra\'s shape', async () => {
    const r = await post({ client_assertion: azureToken() });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
    const issued = entra.issued.get(r.body.access_token as string)!;
    expect(issued).toMatchObject({ clientId: CLIENT, resource: 'https://management.azure.com', federatedIssuer: issuer.url, federatedSubject: SUBJECT, credentialName: 'oz-run' });
    const claims = JSON.parse(Buffer.from((r.body.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ aud: 'https://management.azure.com', appid: CLIENT, tid: TENANT, idtyp: 'app' });
    expect(entra.requests.at(-1)!.checks).toEqual(expect.arrayContaining(['request', 'signature', 'audience', 'federated credential', 'lifetime']));
  });

  it.each([
    ['an ES256 assertion', () => azureToken({}, { alg: 'ES256' }), 5002738, /'ES256' is not a supported signature algorithm/],
    ['an issuer with no federated credential', () => azureToken({ iss: `${issuer.url}/` }), 700211, /presented assertion issuer/],
    ['a subject that differs only in case', () => azureToken({ sub: SUBJECT.toUpperCase() }), 70021, /Assertion Subject: 'TEAMS:ABC123/],
    ['another team\'s subject', () => azureToken({ sub: 'teams:zzz:sub:user-42' }), 70021, /No matching federated identity record found for presented assertion\./],
    ['the AWS audience', () => azureToken({ aud: 'sts.amazonaws.com' }), 700212, /presented assertion audience 'sts.amazonaws.com'/],
    ['an expired assertion', () => azureToken({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 600 }), 700024, /not within its valid time range/],
    ['an assertion not valid yet', () => azureToken({ nbf: now() + 3600 }), 700024, /not within its valid time range/],
    ['a lifetime over a day', () => azureToken({ exp: now() + 86_400 + 120 }), 700024, /at most 86400/],
    ['a signature by another key', () => azureToken({}, { foreignKey: true }), 700027, /signature validation/],
    ['a kid the issuer does not publish', () => azureToken({}, { kid: 'gone' }), 700027, /signature validation/],
    ['garbage', () => 'not-a-jwt', 50027, /JWT token is invalid or malformed/],
    ['a trailing newline', () => `${azureToken()}\n`, 50027, /JWT token is invalid or malformed/],
  ])('refuses %s with AADSTS%s', async (_name, make, code, description) => {
    const r = await post({ client_assertion: make() });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.error_codes).toEqual([code]);
    expect(r.body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
    expect(r.body.error_description).toMatch(description);
    expect(r.body.error_description).toMatch(/Trace ID: [0-9a-f-]{36} Correlation ID: \S+ Timestamp: /);
    expect(entra.requests.at(-1)!.issued).toBeUndefined();
  });

  it('refuses what is not a federated client-credentials request', async () => {
    expect((await post({ client_assertion: azureToken(), client_id: 'nobody' })).body.error_codes).toEqual([700016]);
    expect((await post({ client_assertion: azureToken() }, 'other-tenant')).body.error_codes).toEqual([90002]);
    expect((await post({ client_assertion: azureToken(), scope: 'https://management.azure.com/user_impersonation' })).body.error_codes).toEqual([1002012]);
    expect((await post({ client_assertion: undefined })).body.error_codes).toEqual([7000218]);
    expect((await post({ client_assertion: azureToken(), client_assertion_type: 'urn:other' })).body.error_codes).toEqual([50027]);
    expect((await post({ client_assertion: azureToken(), grant_type: 'password' })).body.error).toBe('unsupported_grant_type');
    // The credential is the application's own: another application's records do not count.
    expect((await post({ client_assertion: azureToken(), client_id: OTHER_CLIENT })).body.error_codes).toEqual([700211]);
  });
});

describe.each(['WorkloadIdentityCredential', 'DefaultAzureCredential'] as const)('@azure/identity %s', (credential) => {
  const run = async (token: string, options: Record<string, unknown> = { disableInstanceDiscovery: true }) => {
    const trapped = trap.requests.length;
    const r = await azureIdentityToken({ credential, options, env: await envFor(token), caFile: certs.caFile, proxy: trap.url, scope: SCOPE });
    return { r, trapped: trap.requests.slice(trapped) };
  };

  it('gets a token with the prepared variables and instance discovery disabled, touching nothing but the stand-in', async () => {
    const before = entra.requests.length;
    const token = azureToken();
    const { r, trapped } = await run(token);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.value.credential).toBe('WorkloadIdentityCredential');
    const issued = entra.issued.get(r.value.token)!;
    expect(issued).toMatchObject({ clientId: CLIENT, federatedSubject: SUBJECT, resource: 'https://management.azure.com' });
    expect(r.value.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
    expect(trapped).toEqual([]);
    const seen = entra.requests.slice(before);
    expect(seen.map((q) => `${q.method} ${q.path}`)).toEqual([`GET /${TENANT}/v2.0/.well-known/openid-configuration`, `POST /${TENANT}/oauth2/v2.0/token`]);
    const tokenRequest = seen.at(-1)!;
    expect(tokenRequest.params).toMatchObject({ client_id: CLIENT, grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE_JWT_BEARER });
    expect(tokenRequest.params.scope).toBe(SCOPE);
    expect(tokenRequest.params.client_assertion).toBe(token);
    expect(tokenRequest.userAgent).toMatch(/^azsdk-js-identity\/4\.13\.1 /);
    // MSAL sends its library name and telemetry in the form, next to the assertion.
    expect(tokenRequest.params['x-client-SKU']).toBe('msal.js.node');
  });

  it.each([
    ['another team\'s subject', () => azureToken({ sub: 'teams:zzz:sub:user-42' }), 'AADSTS70021'],
    ['an ES256 token', () => azureToken({}, { alg: 'ES256' }), 'AADSTS5002738'],
    ['the wrong audience', () => azureToken({ aud: 'sts.amazonaws.com' }), 'AADSTS700212'],
    ['an expired token', () => azureToken({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 600 }), 'AADSTS700024'],
  ])('fails for %s with the AADSTS code', async (_name, make, code) => {
    const { r, trapped } = await run(make());
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code, JSON.stringify(r.error)).toBe(code);
    expect(r.error.message).toContain(code);
    // The default chain goes on to the developer tools after the refusal (AzureCliCredential
    // runs `az`, whose telemetry heads for public hosts when it is installed): all of it was cut.
    expect(trapped.filter((t) => t.tunnelled)).toEqual([]);
    if (credential === 'WorkloadIdentityCredential') expect(trapped).toEqual([]);
  });
});

describe('@azure/identity without instance discovery disabled', () => {
  it('WorkloadIdentityCredential asks login.microsoftonline.com about the authority, is refused, and fails', async () => {
    const before = entra.requests.length;
    const trapped = trap.requests.length;
    const r = await azureIdentityToken({ credential: 'WorkloadIdentityCredential', env: await envFor(azureToken()), caFile: certs.caFile, proxy: trap.url });
    expect(trap.requests.slice(trapped)).toEqual([{ method: 'CONNECT', target: 'login.microsoftonline.com:443', tunnelled: true }]);
    const discovery = entra.requests.slice(before).find((q) => q.endpoint === 'instance-discovery')!;
    expect(discovery).toMatchObject({ host: 'login.microsoftonline.com', errorCode: 50049 });
    expect(discovery.params).toMatchObject({ 'api-version': '1.1', authorization_endpoint: `${entra.url}/${TENANT}/oauth2/v2.0/authorize` });
    expect(entra.requests.slice(before).some((q) => q.endpoint === 'token')).toBe(false);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/endpoints_resolution_error/);
  });

  it('DefaultAzureCredential still succeeds: its ManagedIdentityCredential exchanges the token file with discovery off', async () => {
    const before = entra.requests.length;
    const r = await azureIdentityToken({ credential: 'DefaultAzureCredential', env: await envFor(azureToken()), caFile: certs.caFile, proxy: trap.url });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.value.credential).toBe('ManagedIdentityCredential');
    expect(entra.issued.get(r.value.token)).toMatchObject({ clientId: CLIENT, federatedSubject: SUBJECT });
    expect(entra.requests.slice(before).map((q) => q.endpoint)).toEqual(['instance-discovery', 'openid-configuration', 'token']);
  });
});

describe('@azure/identity network traps', () => {
  it('DefaultAzureCredential with no token file probes IMDS through the trap, which cuts it, and fails fast', async () => {
    const trapped = trap.requests.length;
    const started = Date.now();
    const env = { AZURE_CLIENT_ID: CLIENT, AZURE_TENANT_ID: TENANT, AZURE_AUTHORITY_HOST: entra.url };
    const r = await azureIdentityToken({ credential: 'DefaultAzureCredential', options: { disableInstanceDiscovery: true }, env, caFile: certs.caFile, proxy: trap.url });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.name).toBe('AggregateAuthenticationError');
    const imds = trap.requests.slice(trapped).filter((t) => t.target.startsWith('http://169.254.169.254/'));
    expect(imds.length).toBeGreaterThan(0);
    expect(imds.every((t) => t.method === 'GET' && !t.tunnelled)).toBe(true);
    expect(r.ok ? '' : r.error.message).toMatch(/ManagedIdentityCredential[^\n]*(unavailable|Unavailable|not available|IMDS)/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('tokens from the built oz, judged by the Entra stand-in through @azure/identity', () => {
  let served: Served;
  let ozEnv: Record<string, string>;
  let ozEntra: EntraStandIn;
  let home: string;

  beforeAll(async () => {
    home = ozTempDir('oz-azure-issuer-');
    ozEnv = ozScrubbedEnv(home, { OZ_RUN_ID: 'run-azure-1', OZ_SUBJECT: 'user-42', OZ_TEAMS: 'team-a' });
    served = await serve(ozEnv);
    ozEnv.OZ_ISSUER_URL = served.url;
    ozEntra = await startEntraStandIn({ tenantId: TENANT, tls: certs, applications: { [CLIENT]: [{ issuer: served.url, subject: 'user-42' }] } });
  });

  afterAll(async () => {
    await Promise.all([ozEntra?.close(), served?.stop()]);
    await rm(home, { recursive: true, force: true });
  });

  it.each(['WorkloadIdentityCredential', 'DefaultAzureCredential'] as const)('%s gets a token for an RS256 token from `oz federate issue-token`', async (credential) => {
    const issued = await oz(['federate', 'issue-token', '--audience', AZURE_AD_TOKEN_EXCHANGE], { env: ozEnv });
    expect(issued.code, issued.stderr).toBe(0);
    const token = issued.stdout.trim();
    expect(decode(token).header.alg).toBe('RS256');
    const tokenFile = await writeWebIdentityTokenFile(path.join(dir, `${++files}-oz-token`), token);
    const env = azureWorkloadIdentityEnv({ clientId: CLIENT, tenantId: TENANT, tokenFile, authorityHost: ozEntra.url });
    const r = await azureIdentityToken({ credential, options: { disableInstanceDiscovery: true }, env, caFile: certs.caFile, proxy: trap.url });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (r.ok) expect(ozEntra.issued.get(r.value.token)).toMatchObject({ federatedIssuer: served.url, federatedSubject: 'user-42' });
  });

  it('refuses a token from an oz issuer whose key is ES256 with AADSTS5002738', async () => {
    const esHome = ozTempDir('oz-azure-es256-');
    const esEnv = ozScrubbedEnv(esHome, { OZ_RUN_ID: 'run-azure-2', OZ_SUBJECT: 'user-42' });
    const init = await oz(['issuer', 'init', '--alg', 'ES256'], { env: esEnv });
    expect(init.code, init.stderr).toBe(0);
    const esServed = await serve(esEnv);
    try {
      esEnv.OZ_ISSUER_URL = esServed.url;
      const issued = await oz(['federate', 'issue-token', '--audience', AZURE_AD_TOKEN_EXCHANGE], { env: esEnv });
      expect(issued.code, issued.stderr).toBe(0);
      expect(decode(issued.stdout.trim()).header.alg).toBe('ES256');
      const tokenFile = await writeWebIdentityTokenFile(path.join(dir, `${++files}-oz-es-token`), issued.stdout.trim());
      const env = azureWorkloadIdentityEnv({ clientId: CLIENT, tenantId: TENANT, tokenFile, authorityHost: ozEntra.url });
      const r = await azureIdentityToken({ credential: 'WorkloadIdentityCredential', options: { disableInstanceDiscovery: true }, env, caFile: certs.caFile, proxy: trap.url });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('AADSTS5002738');
    } finally {
      await esServed.stop();
      await rm(esHome, { recursive: true, force: true });
    }
  });
});
