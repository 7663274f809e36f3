// The stand-ins are only worth something if they refuse what the real services refuse, so each
// refusal is checked here against a throwaway issuer before any oz token is judged by them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsSts, startGcpSts } from './helpers/standins.js';
import type { AwsStsStandIn, GcpStsStandIn } from './helpers/standins.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/oz-agent';
const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
const PROVIDER_HTTPS_AUD = `https:${PROVIDER}`;

let issuer: TestIssuer;
let untrusted: TestIssuer;
let mismatched: TestIssuer;
let aws: AwsStsStandIn;
let gcp: GcpStsStandIn;
const deadIssuer = 'http://127.0.0.1:9';

beforeAll(async () => {
  [issuer, untrusted, mismatched] = await Promise.all([startTestIssuer(), startTestIssuer(), startTestIssuer({ path: '/tenant' })]);
  mismatched.setDiscoveryOverrides({ issuer: 'http://127.0.0.1:1/someone-else' });
  aws = await startAwsSts({ trustedIssuers: [issuer.url, mismatched.url, deadIssuer] });
  gcp = await startGcpSts({
    trustedIssuer: issuer.url,
    audience: PROVIDER,
    attributeCondition: (c) => Array.isArray(c.teams) && c.teams.includes('team-a'),
  });
});

afterAll(async () => {
  await Promise.all([issuer, untrusted, mismatched, aws, gcp].map((s) => s?.close()));
});

const now = () => Math.floor(Date.now() / 1000);

async function assume(params: Record<string, string | undefined>, url = aws.url) {
  const form = new URLSearchParams();
  const all = { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE_ARN, RoleSessionName: 'Oz_Run_abc', ...params };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) form.set(k, v);
  const res = await fetch(url, { method: 'POST', body: form });
  const text = await res.text();
  const unescape = (s?: string) => s?.replace(/&(lt|gt|quot|apos|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);
  return { status: res.status, text, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: unescape(/<Message>([^<]*)<\/Message>/.exec(text)?.[1]) };
}

const awsToken = (claims: Record<string, unknown> = {}, opts = {}) => issuer.token({ aud: 'sts.amazonaws.com', ...claims }, opts);

describe('AWS STS stand-in: AssumeRoleWithWebIdentity', () => {
  it('accepts a good RS256 token and answers in STS XML', async () => {
    const r = await assume({ WebIdentityToken: awsToken({ sub: 'user-42' }) });
    expect(r.status).toBe(200);
    expect(r.text).toContain('<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">');
    expect(r.text).toMatch(/<AccessKeyId>ASIA[A-Z2-7]{16}<\/AccessKeyId>/);
    expect(r.text).toContain('<SubjectFromWebIdentityToken>user-42</SubjectFromWebIdentityToken>');
    expect(r.text).toContain('<Arn>arn:aws:sts::123456789012:assumed-role/oz-agent/Oz_Run_abc</Arn>');
    expect(r.text).toContain('<Audience>sts.amazonaws.com</Audience>');
    expect(r.text).toContain(`<Provider>${issuer.url}</Provider>`);
    const rec = aws.requests.at(-1)!;
    expect(rec).toMatchObject({ ok: true, status: 200, subject: 'user-42', roleSessionName: 'Oz_Run_abc', roleArn: ROLE_ARN });
    expect(rec.checks).toEqual(expect.arrayContaining(['parameters', 'issuer trusted', 'discovery issuer matches', 'key found', 'signature', 'aud', 'exp', 'iat']));
    expect(aws.issued.get(rec.credentials!.accessKeyId)?.subject).toBe('user-42');
  });

  it('accepts ES256 and an aud array that contains the audience', async () => {
    const r = await assume({ WebIdentityToken: awsToken({ aud: ['other', 'sts.amazonaws.com'] }, { alg: 'ES256' }) });
    expect(r.status).toBe(200);
    expect(aws.requests.at(-1)!.header).toMatchObject({ alg: 'ES256', kid: issuer.kids.ES256 });
  });

  it('tolerates a little clock skew on iat and nbf', async () => {
    const r = await assume({ WebIdentityToken: awsToken({ iat: now() + 20, nbf: now() + 20 }) });
    expect(r.status).toBe(200);
  });

  it.each([
    ['a signature by another key', () => awsToken({}, { foreignKey: true }), /signature/],
    ['an ES256 signature by another key', () => awsToken({}, { alg: 'ES256', foreignKey: true }), /signature/],
    ['an unknown kid', () => awsToken({}, { kid: 'no-such-key' }), /no key with kid/i],
    ['a kid naming a key of the other type', () => awsToken({}, { alg: 'ES256', kid: issuer.kids.RS256 }), /cannot verify ES256/],
    ['no kid', () => awsToken({}, { kid: null }), /no kid/i],
    ['alg none', () => awsToken({}, { alg: 'none' }), /algorithm "none"/],
    ['alg HS256 keyed with the public key', () => awsToken({}, { alg: 'HS256' }), /algorithm "HS256"/],
    ['an untrusted issuer', () => untrusted.token({ aud: 'sts.amazonaws.com' }), /No OpenIDConnect provider found/],
    ['a discovery document naming another issuer', () => mismatched.token({ aud: 'sts.amazonaws.com' }), /does not match the token's iss/],
    ['the wrong audience', () => awsToken({ aud: 'https://iam.googleapis.com/x' }), /^Incorrect token audience$/],
    ['no audience', () => awsToken({ aud: undefined }), /no aud/i],
    ['iat in the future', () => awsToken({ iat: now() + 3600 }), /iat .* in the future/],
    ['nbf in the future', () => awsToken({ nbf: now() + 3600 }), /not valid before/],
    ['no sub', () => awsToken({ sub: undefined }), /no sub/i],
    ['a trailing newline', () => `${awsToken()}\n`, /not a compact JWS/],
    ['garbage', () => 'not-a-jwt', /not a compact JWS/],
  ])('refuses %s with InvalidIdentityToken', async (_name, make, message) => {
    const r = await assume({ WebIdentityToken: make() });
    expect(r.status).toBe(400);
    expect(r.code).toBe('InvalidIdentityToken');
    expect(r.message).toMatch(message);
    expect(aws.requests.at(-1)).toMatchObject({ ok: false, errorCode: 'InvalidIdentityToken' });
    expect(aws.requests.at(-1)!.credentials).toBeUndefined();
  });

  it('never fetches discovery for an untrusted issuer', async () => {
    const before = untrusted.hits.discovery;
    await assume({ WebIdentityToken: untrusted.token({ aud: 'sts.amazonaws.com' }) });
    expect(untrusted.hits.discovery).toBe(before);
  });

  it('refuses an expired token with ExpiredTokenException', async () => {
    const r = await assume({ WebIdentityToken: awsToken({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 60 }) });
    expect(r.status).toBe(400);
    expect(r.code).toBe('ExpiredTokenException');
    expect(r.message).toMatch(/^Token expired: current date\/time \d+ must be before the expiration date\/time \d+$/);
  });

  it('answers IDPCommunicationError when the issuer cannot be reached', async () => {
    const r = await assume({ WebIdentityToken: issuer.sign({ iss: deadIssuer, sub: 's', aud: 'sts.amazonaws.com', iat: now(), exp: now() + 600 }) });
    expect(r.code).toBe('IDPCommunicationError');
  });

  it.each([
    ['bad characters', 'Oz Run!', /regular expression pattern/],
    ['one character', 'x', /greater than or equal to 2/],
    ['65 characters', 'a'.repeat(65), /less than or equal to 64/],
    ['nothing', undefined, /roleSessionName' failed to satisfy constraint: Member must not be null/],
  ])('refuses a session name of %s with ValidationError', async (_name, name, message) => {
    const r = await assume({ WebIdentityToken: awsToken(), RoleSessionName: name });
    expect(r.status).toBe(400);
    expect(r.code).toBe('ValidationError');
    expect(r.message).toMatch(message);
  });

  it('accepts session names of 2 and 64 characters from the whole allowed set', async () => {
    for (const name of ['ab', `Oz_Run_${'x'.repeat(57)}`, 'a+b=c,d.e@f-g_h']) {
      const r = await assume({ WebIdentityToken: awsToken(), RoleSessionName: name });
      expect(r.status, name).toBe(200);
    }
  });

  it('reports every validation error at once, as STS does', async () => {
    const r = await assume({ WebIdentityToken: awsToken(), RoleSessionName: 'x', DurationSeconds: '10' });
    expect(r.message).toMatch(/^2 validation errors detected: /);
  });

  it.each([
    ['a malformed role ARN', { RoleArn: 'arn:aws:iam::12345:role/x' }, /Request ARN is invalid/],
    ['a user ARN', { RoleArn: 'arn:aws:iam::123456789012:user/someone' }, /Request ARN is invalid/],
    ['a duration under 900 s', { DurationSeconds: '899' }, /greater than or equal to 900/],
    ['a duration over the role maximum', { DurationSeconds: '3601' }, /exceeds the MaxSessionDuration/],
  ])('refuses %s with ValidationError', async (_name, params, message) => {
    const r = await assume({ WebIdentityToken: awsToken(), ...params });
    expect(r.code).toBe('ValidationError');
    expect(r.message).toMatch(message);
  });

  it('accepts a role path and a duration within bounds', async () => {
    const r = await assume({ WebIdentityToken: awsToken(), RoleArn: 'arn:aws:iam::123456789012:role/team/oz-agent', DurationSeconds: '900' });
    expect(r.status).toBe(200);
    const expiration = Date.parse(/<Expiration>([^<]+)<\/Expiration>/.exec(r.text)![1]!);
    expect(expiration - Date.now()).toBeGreaterThan(890_000);
    expect(expiration - Date.now()).toBeLessThan(901_000);
  });

  it('answers AccessDenied when the trust policy does not match', async () => {
    const strict = await startAwsSts({ trustedIssuers: [issuer.url], trustPolicy: (c) => c.sub === 'allowed' });
    try {
      expect((await assume({ WebIdentityToken: awsToken({ sub: 'allowed' }) }, strict.url)).status).toBe(200);
      const r = await assume({ WebIdentityToken: awsToken({ sub: 'intruder' }) }, strict.url);
      expect(r.status).toBe(403);
      expect(r.code).toBe('AccessDenied');
    } finally {
      await strict.close();
    }
  });

  it('honours a custom audience', async () => {
    const custom = await startAwsSts({ trustedIssuers: [issuer.url], audience: 'my-client-id' });
    try {
      expect((await assume({ WebIdentityToken: awsToken({ aud: 'my-client-id' }) }, custom.url)).status).toBe(200);
      expect((await assume({ WebIdentityToken: awsToken() }, custom.url)).message).toBe('Incorrect token audience');
    } finally {
      await custom.close();
    }
  });

  it('refuses unknown actions and protocols it does not speak', async () => {
    expect((await assume({ Action: 'AssumeRole', WebIdentityToken: awsToken() })).code).toBe('InvalidAction');
    const res = await fetch(aws.url, { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('StandInUnsupportedProtocol');
  });
});

describe('GCP STS stand-in: token exchange', () => {
  const gcpToken = (claims: Record<string, unknown> = {}, opts = {}) =>
    issuer.token({ aud: PROVIDER_HTTPS_AUD, teams: ['team-a'], ...claims }, opts);

  async function exchange(subjectToken: string, overrides: Record<string, string> = {}) {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: PROVIDER,
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      ...overrides,
    });
    const res = await fetch(gcp.tokenUrl, { method: 'POST', body: form });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('exchanges a good token for an access token', async () => {
    const r = await exchange(gcpToken({ sub: 'svc-7' }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 });
    const rec = gcp.requests.at(-1)!;
    expect(rec).toMatchObject({ endpoint: 'token', ok: true, subject: 'svc-7', scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
    expect(rec.checks).toEqual(expect.arrayContaining(['provider audience', 'signature', 'aud', 'google.subject', 'attribute condition']));
    expect(gcp.issued.get(r.body.access_token as string)?.subject).toBe('svc-7');
  });

  it('accepts the //iam.googleapis.com form of the audience claim and ES256', async () => {
    expect((await exchange(gcpToken({ aud: PROVIDER }, { alg: 'ES256' }))).status).toBe(200);
  });

  it('accepts the options parameter and JSON bodies, as GCP STS does', async () => {
    expect((await exchange(gcpToken(), { options: JSON.stringify({ userProject: '123' }) })).status).toBe(200);
    const res = await fetch(gcp.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        audience: PROVIDER,
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token: gcpToken(),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        scope: 'https://www.googleapis.com/auth/cloud-platform',
      }),
    });
    expect(res.status).toBe(200);
  });

  it.each([
    ['a signature by another key', () => gcpToken({}, { foreignKey: true }), /signature/],
    ['an unknown kid', () => gcpToken({}, { kid: 'nope' }), /no key with kid/],
    ['alg none', () => gcpToken({}, { alg: 'none' }), /algorithm "none"/],
    ['alg HS256', () => gcpToken({}, { alg: 'HS256' }), /algorithm "HS256"/],
    ['an untrusted issuer', () => untrusted.token({ aud: PROVIDER_HTTPS_AUD, teams: ['team-a'] }), /no OpenID Connect provider/],
    ['the AWS audience', () => gcpToken({ aud: 'sts.amazonaws.com' }), /does not match the expected audience/],
    ['another provider as audience', () => gcpToken({ aud: PROVIDER_HTTPS_AUD.replace('oz-provider', 'other-provider') }), /does not match the expected audience/],
    ['an expired token', () => gcpToken({ iat: now() - 7200, exp: now() - 1 }), /expired/],
    ['iat in the future', () => gcpToken({ iat: now() + 3600 }), /in the future/],
    ['a trailing newline', () => `${gcpToken()}\n`, /not a compact JWS/],
    ['teams without the required team', () => gcpToken({ teams: ['team-b'] }), /rejected by the attribute condition/],
    ['no teams claim', () => gcpToken({ teams: undefined }), /rejected by the attribute condition/],
    ['a subject over 127 bytes', () => gcpToken({ sub: 'é'.repeat(64) }), /127 bytes/],
  ])('refuses %s with invalid_grant', async (_name, make, description) => {
    const r = await exchange(make());
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_grant');
    expect(r.body.error_description).toMatch(description);
    expect(gcp.requests.at(-1)!.issued).toBeUndefined();
  });

  it('refuses a request whose audience is not the provider with invalid_target', async () => {
    const r = await exchange(gcpToken(), { audience: PROVIDER.replace('oz-provider', 'other-provider') });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_target');
  });

  it.each([
    ['grant_type', { grant_type: 'client_credentials' }, 'unsupported_grant_type'],
    ['requested_token_type', { requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, 'invalid_request'],
    ['subject_token_type', { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, 'invalid_request'],
    ['options', { options: '{not json' }, 'invalid_request'],
  ])('refuses a bad %s', async (_name, overrides, error) => {
    const r = await exchange(gcpToken(), overrides);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe(error);
  });

  it('introspects the tokens it issued, and only those', async () => {
    const { body } = await exchange(gcpToken({ sub: 'introspected' }));
    const ask = async (token: string) =>
      (await (await fetch(gcp.tokenInfoUrl, { method: 'POST', body: new URLSearchParams({ token }) })).json()) as Record<string, unknown>;
    expect(await ask(body.access_token as string)).toMatchObject({
      active: true,
      sub: 'introspected',
      username: 'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/subject/introspected',
    });
    expect(await ask('ya29.made-up')).toEqual({ active: false });
  });

  it('impersonates a service account for a federated token, and refuses anything else', async () => {
    const { body } = await exchange(gcpToken({ sub: 'impersonator' }));
    const call = (bearer: string | undefined, payload: unknown, sa = 'runner@proj.iam.gserviceaccount.com') =>
      fetch(gcp.impersonationUrl(sa), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: JSON.stringify(payload),
      });
    const ok = await call(body.access_token as string, { scope: ['https://www.googleapis.com/auth/cloud-platform'], lifetime: '600s' });
    expect(ok.status).toBe(200);
    const granted = (await ok.json()) as { accessToken: string; expireTime: string };
    expect(granted.accessToken).toMatch(/^ya29\.standin-sa\./);
    expect(Date.parse(granted.expireTime) - Date.now()).toBeGreaterThan(590_000);
    expect(gcp.requests.at(-1)).toMatchObject({ endpoint: 'generateAccessToken', serviceAccount: 'runner@proj.iam.gserviceaccount.com', subject: 'impersonator' });

    expect((await call(undefined, { scope: ['x'] })).status).toBe(401);
    expect((await call('ya29.made-up', { scope: ['x'] })).status).toBe(401);
    expect((await call(body.access_token as string, {})).status).toBe(400);
    expect((await call(body.access_token as string, { scope: ['x'], lifetime: '7200s' })).status).toBe(400);
  });

  it('refuses impersonation the bindings do not allow', async () => {
    const strict = await startGcpSts({ trustedIssuer: issuer.url, audience: PROVIDER, canImpersonate: (sa) => sa === 'ok@p.iam.gserviceaccount.com' });
    try {
      const form = new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        audience: PROVIDER,
        scope: 'https://www.googleapis.com/auth/cloud-platform',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token: gcpToken(),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      });
      const { access_token } = (await (await fetch(strict.tokenUrl, { method: 'POST', body: form })).json()) as { access_token: string };
      const call = (sa: string) =>
        fetch(strict.impersonationUrl(sa), { method: 'POST', headers: { authorization: `Bearer ${access_token}` }, body: JSON.stringify({ scope: ['s'] }) });
      expect((await call('ok@p.iam.gserviceaccount.com')).status).toBe(200);
      const denied = await call('other@p.iam.gserviceaccount.com');
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as { error: { status: string } }).error.status).toBe('PERMISSION_DENIED');
    } finally {
      await strict.close();
    }
  });

  it('refuses a configuration that is not a workload identity provider', async () => {
    await expect(startGcpSts({ trustedIssuer: issuer.url, audience: 'https://example.com' })).rejects.toThrow(/not a workload identity provider/);
  });
});
