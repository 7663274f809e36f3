import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkAuthorityHost, checkAzureClientId, checkAzureTenantId, isMicrosoftAuthorityHost } from '../../src/sandbox/azure.js';
import { parseTokenFileList, parseTokenFileRequest, variableOfTokenFile, tokenFileName, tokenFileVariable } from '../../src/sandbox/token-files.js';
import { azureRefusal, planPrepare } from '../../src/sandbox/prepare.js';
import { signJwt } from '../../src/core/jws.js';
import { OzError } from '../../src/core/errors.js';
import { thrown } from '../helpers/thrown.js';

const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe('Azure inputs', () => {
  it.each([CLIENT, CLIENT.toUpperCase()])('takes the client ID %s', (id) => {
    expect(checkAzureClientId(id)).toEqual({ ok: true, value: id });
  });

  it.each(['', 'my-app', `${CLIENT}x`, `{${CLIENT}}`, CLIENT.replace(/-/g, ''), ` ${CLIENT}`])('refuses the client ID %j', (id) => {
    expect(checkAzureClientId(id)).toMatchObject({ ok: false, problem: expect.stringMatching(/application \(client\) ID, a GUID/) });
  });

  it.each([TENANT, 'contoso.onmicrosoft.com', 'Contoso.OnMicrosoft.com', 'login.contoso.co.uk', 'xn--bcher-kva.example'])('takes the tenant %s', (t) => {
    expect(checkAzureTenantId(t)).toEqual({ ok: true, value: t });
  });

  it.each([
    ['common', /names no single tenant/],
    ['Organizations', /names no single tenant/],
    ['consumers', /names no single tenant/],
    ['contoso', /a GUID, or a verified domain name/],
    ['contoso.onmicrosoft.com/', /a GUID, or a verified domain name/],
    ['-contoso.com', /a GUID, or a verified domain name/],
    ['contoso..com', /a GUID, or a verified domain name/],
    ['contoso.123', /a GUID, or a verified domain name/],
    ['a b.com', /a GUID, or a verified domain name/],
    [`${'a'.repeat(64)}.com`, /a GUID, or a verified domain name/],
    ['', /a GUID, or a verified domain name/],
  ])('refuses the tenant %j', (t, why) => {
    expect(checkAzureTenantId(t)).toMatchObject({ ok: false, problem: expect.stringMatching(why) });
  });

  it.each([
    ['https://login.microsoftonline.com', 'https://login.microsoftonline.com/'],
    ['https://login.microsoftonline.us/', 'https://login.microsoftonline.us/'],
    ['https://127.0.0.1:8443', 'https://127.0.0.1:8443/'],
  ])('takes the authority host %s as %s', (raw, value) => {
    expect(checkAuthorityHost(raw)).toEqual({ ok: true, value });
  });

  it.each([
    ['http://login.microsoftonline.com', /https only/],
    ['https://login.microsoftonline.com/tenant', /no path, query/],
    ['https://login.microsoftonline.com/?x=1', /no path, query/],
    ['https://login.microsoftonline.com?', /no path, query/],
    ['https://login.microsoftonline.com/#a', /no path, query/],
    ['https://user:pw@login.microsoftonline.com', /no path, query/],
    ['login.microsoftonline.com', /expected an https origin/],
  ])('refuses the authority host %j', (raw, why) => {
    expect(checkAuthorityHost(raw)).toMatchObject({ ok: false, problem: expect.stringMatching(why) });
  });

  it("knows Microsoft's own authority hosts", () => {
    expect(isMicrosoftAuthorityHost('https://login.microsoftonline.com/')).toBe(true);
    expect(isMicrosoftAuthorityHost('https://LOGIN.chinacloudapi.cn/')).toBe(true);
    expect(isMicrosoftAuthorityHost('https://127.0.0.1:8443/')).toBe(false);
  });
});

describe('--token NAME=AUDIENCE', () => {
  it.each([
    ['vault=https://vault.example.com', { name: 'VAULT', audience: 'https://vault.example.com' }],
    ['my_api2=urn:x=y', { name: 'MY_API2', audience: 'urn:x=y' }],
    ['9=aud', { name: '9', audience: 'aud' }],
  ])('reads %s', (raw, value) => {
    expect(parseTokenFileRequest(raw)).toEqual({ ok: true, value });
  });

  it.each([
    ['vault', /expected NAME=AUDIENCE/],
    ['=aud', /the name "" must be 1-64 letters/],
    ['my-api=aud', /the name "my-api" must be/],
    ['vault.x=aud', /the name "vault.x" must be/],
    [`${'n'.repeat(65)}=aud`, /must be 1-64/],
    ['vault=', /the audience "" cannot be a token's "aud": it is empty/],
    ['vault= aud', /it has leading or trailing whitespace/],
    ['vault=a\u0001b', /control characters/],
    [`vault=${'a'.repeat(1025)}`, /more than 1024/],
  ])('refuses %j', (raw, why) => {
    expect(parseTokenFileRequest(raw)).toMatchObject({ ok: false, problem: expect.stringMatching(why) });
  });

  it('reads OZ_TOKEN_FILES as a comma list and refuses a name given twice in any case', () => {
    expect(parseTokenFileList('vault=https://v, saas=api://saas ,')).toEqual({ ok: true, value: [{ name: 'VAULT', audience: 'https://v' }, { name: 'SAAS', audience: 'api://saas' }] });
    expect(parseTokenFileList('vault=a,Vault=b')).toMatchObject({ ok: false, problem: expect.stringMatching(/the name VAULT is given twice/) });
    expect(parseTokenFileList(' , ')).toMatchObject({ ok: false, problem: expect.stringMatching(/expected NAME=AUDIENCE entries/) });
    expect(parseTokenFileList('vault=a,oops')).toMatchObject({ ok: false, problem: expect.stringMatching(/^"oops": expected NAME=AUDIENCE/) });
  });

  it("maps a name to its file and variable, and a file back to its variable (what cleanup relies on)", () => {
    expect(tokenFileName('MY_API2')).toBe('token-my_api2');
    expect(tokenFileVariable('my_api2')).toBe('OZ_TOKEN_FILE_MY_API2');
    expect(variableOfTokenFile('token-my_api2')).toBe('OZ_TOKEN_FILE_MY_API2');
    for (const other of ['token-', 'token-A', 'token-a.tmp', '.token-a', 'aws-web-identity-token', 'token-a/b', '../token-a']) expect(variableOfTokenFile(other), other).toBeUndefined();
  });
});

describe('planPrepare', () => {
  it('puts the AWS, Azure and --token files in one list, in that order', () => {
    const plan = planPrepare(
      { awsRoleArn: 'arn:aws:iam::123456789012:role/r', azureClientId: CLIENT, azureTenantId: TENANT, token: ['vault=https://vault', 'saas=api://saas'] },
      {},
    );
    expect(plan.tokenFiles.map((t) => [t.file, t.audience, t.exports])).toEqual([
      ['aws-web-identity-token', 'sts.amazonaws.com', ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_SESSION_NAME']],
      ['azure-federated-token', 'api://AzureADTokenExchange', ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST']],
      ['token-vault', 'https://vault', ['OZ_TOKEN_FILE_VAULT']],
      ['token-saas', 'api://saas', ['OZ_TOKEN_FILE_SAAS']],
    ]);
    // Within what Entra ID accepts, counted from the backdated nbf.
    expect(plan.tokenFiles[1]!.maxSeconds).toBe(86_400 - 30);
    expect(plan.notes).toEqual([]);
  });

  it('reads the Azure settings and token files from the environment; a flag wins', () => {
    const env = { OZ_AZURE_CLIENT_ID: CLIENT, OZ_AZURE_TENANT_ID: TENANT, OZ_AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us', OZ_TOKEN_FILES: 'a=x,b=y' };
    const plan = planPrepare({}, env);
    const azure = plan.tokenFiles[0]!;
    expect(azure.variables('/d/azure-federated-token', { token: '', expiresAt: new Date(), claims: {} })).toEqual([
      ['AZURE_CLIENT_ID', CLIENT],
      ['AZURE_TENANT_ID', TENANT],
      ['AZURE_FEDERATED_TOKEN_FILE', '/d/azure-federated-token'],
      ['AZURE_AUTHORITY_HOST', 'https://login.microsoftonline.us/'],
    ]);
    expect(plan.tokenFiles.slice(1).map((t) => t.file)).toEqual(['token-a', 'token-b']);
    expect(planPrepare({ token: ['c=z'] }, env).tokenFiles.slice(1).map((t) => t.file)).toEqual(['token-c']);
  });

  it('notes that a non-Microsoft authority host needs instance discovery off in WorkloadIdentityCredential', () => {
    const plan = planPrepare({ azureClientId: CLIENT, azureTenantId: TENANT, azureAuthorityHost: 'https://127.0.0.1:9443' }, {});
    expect(plan.notes).toEqual([expect.stringMatching(/^oz: note: https:\/\/127\.0\.0\.1:9443\/ is not one of Microsoft's authority hosts: .*disableInstanceDiscovery: true/)]);
  });

  it('warns when a client secret or certificate would win over the token file in DefaultAzureCredential', () => {
    const plan = planPrepare({ azureClientId: CLIENT, azureTenantId: TENANT }, { AZURE_CLIENT_SECRET: 'hunter2' });
    expect(plan.notes).toEqual(['oz: warning: AZURE_CLIENT_SECRET is set; DefaultAzureCredential uses it before the federated token file, so unset it for workload identity to be used']);
    expect(planPrepare({ azureClientId: CLIENT, azureTenantId: TENANT }, { AZURE_CLIENT_SECRET: 's', AZURE_CLIENT_CERTIFICATE_PATH: '/c.pem' }).notes[0]).toMatch(/^oz: warning: AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are set;/);
    expect(planPrepare({ token: ['v=a'] }, { AZURE_CLIENT_SECRET: 's' }).notes).toEqual([]);
  });

  it.each([
    ['a client ID alone', { azureClientId: CLIENT }, {}, 'usage', /^incomplete Azure federation settings: missing --azure-tenant-id \(OZ_AZURE_TENANT_ID\)/],
    ['a tenant alone, from the environment', {}, { OZ_AZURE_TENANT_ID: TENANT }, 'usage', /missing --azure-client-id \(OZ_AZURE_CLIENT_ID\)/],
    ['an authority host alone', {}, { OZ_AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' }, 'usage', /^OZ_AZURE_AUTHORITY_HOST needs Azure federation/],
    ['a bad client ID flag', { azureClientId: 'app', azureTenantId: TENANT }, {}, 'usage', /^invalid --azure-client-id "app"/],
    ['a bad tenant variable', { azureClientId: CLIENT }, { OZ_AZURE_TENANT_ID: 'common' }, 'config', /^invalid OZ_AZURE_TENANT_ID "common"/],
    ['a bad --token', { token: ['ok=a', 'bad'] }, {}, 'usage', /^invalid --token "bad": expected NAME=AUDIENCE/],
    ['a --token name twice', { token: ['v=a', 'V=b'] }, {}, 'usage', /^invalid --token: the name V is given twice/],
    ['a bad OZ_TOKEN_FILES', {}, { OZ_TOKEN_FILES: 'v=a,v=b' }, 'config', /^invalid OZ_TOKEN_FILES "v=a,v=b": the name V is given twice/],
  ])('refuses %s', (_n, flags, env, code, message) => {
    const e = thrown(() => planPrepare(flags, env));
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe(code);
    expect((e as OzError).message).toMatch(message);
  });
});

describe('azureRefusal: what Entra ID would refuse, judged on the token as issued', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const now = Math.floor(Date.now() / 1000);
  const issued = (alg: 'RS256' | 'ES256', claims: Record<string, unknown>) => ({
    token: signJwt({ alg, kid: 'k', typ: 'JWT' }, claims, alg === 'RS256' ? rsa : ec),
    expiresAt: new Date(),
    claims,
  });
  const day = { iat: now - 30, nbf: now - 30, exp: now + 86_400 - 30 };

  it('accepts an RS256 token valid for a day', () => {
    expect(azureRefusal(issued('RS256', day), {})).toBeUndefined();
  });

  it('refuses an ES256 token from the embedded issuer, naming the fix', () => {
    const e = azureRefusal(issued('ES256', day), {})!;
    expect(e.code).toBe('config');
    expect(e.message).toBe('cannot prepare Azure: Entra ID accepts RS256 tokens only, and the embedded issuer\'s key is "ES256": run `oz issuer rotate --alg RS256` (and publish the new JWKS), or drop the Azure settings');
  });

  it('refuses an ES256 token from a token service, by its header', () => {
    const e = azureRefusal(issued('ES256', day), { OZ_RUN_TOKEN: 'x.y.z' })!;
    expect(e.code).toBe('config');
    expect(e.message).toMatch(/^cannot prepare Azure: Entra ID accepts RS256 tokens only, and the token service signs with "ES256": its operator must switch the issuer to an RS256 key/);
  });

  it('refuses a token that lives longer than Entra ID accepts', () => {
    const e = azureRefusal(issued('RS256', { ...day, exp: now + 86_400 }), { OZ_RUN_TOKEN: 'x.y.z' })!;
    expect(e.message).toBe("cannot prepare Azure: the token service's token is valid for 86430 s, and Entra ID refuses tokens valid for more than a day");
    expect(azureRefusal(issued('RS256', { exp: now + 60 }), {})!.message).toMatch(/valid for an unknown time/);
  });
});
