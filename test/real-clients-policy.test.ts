// The real AWS clients (AWS SDK for JavaScript v3, boto3) against roles whose IAM trust policies
// scope them to one team, the two ways SPEC.md's "Scoping AWS by team" describes: session tags
// (`aws:RequestTag/teams`, with sts:TagSession allowed) and a subject format (`StringLike` on
// `<issuer>:sub`). The tokens come from the test issuer, carrying the claims oz is to emit.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsWebIdentityEnv, makeTempDir, networkTrapEnv, resolveAwsJs, resolveBoto3, writeWebIdentityTokenFile } from './helpers/clients.js';
import { oidcProviderName, SESSION_TAGS_CLAIM } from './helpers/iam-policy.js';
import type { PolicyDocument } from './helpers/iam-policy.js';
import { startAwsSts } from './helpers/standins.js';
import type { AwsStsStandIn } from './helpers/standins.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const ACCOUNT = '123456789012';
const ROLE_BY_TAG = `arn:aws:iam::${ACCOUNT}:role/team-abc-by-tag`;
const ROLE_BY_SUB = `arn:aws:iam::${ACCOUNT}:role/team-abc-by-sub`;
const SESSION = 'Oz_Run_run-7f3a';

let issuer: TestIssuer;
let sts: AwsStsStandIn;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  issuer = await startTestIssuer({ path: '/platform' });
  const provider = oidcProviderName(issuer.url);
  const Principal = { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/${provider}` };
  const byTag: PolicyDocument = {
    Version: '2012-10-17',
    Statement: [{
      Effect: 'Allow',
      Principal,
      Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'],
      Condition: { StringEquals: { [`${provider}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/teams': 'abc' } },
    }],
  };
  const bySub: PolicyDocument = {
    Version: '2012-10-17',
    Statement: [{
      Effect: 'Allow',
      Principal,
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [`${provider}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${provider}:sub`]: 'teams:abc:*' } },
    }],
  };
  sts = await startAwsSts({ trustedIssuers: [issuer.url], trustPolicies: { [ROLE_BY_TAG]: byTag, [ROLE_BY_SUB]: bySub } });
  ({ dir, cleanup } = await makeTempDir('oz-policy-clients-'));
});

afterAll(async () => {
  await Promise.all([issuer?.close(), sts?.close()]);
  await cleanup?.();
});

const taggedToken = (team: string) =>
  issuer.token({ aud: 'sts.amazonaws.com', sub: 'user-42', [SESSION_TAGS_CLAIM]: { principal_tags: { teams: [team] }, transitive_tag_keys: ['teams'] } });
const subjectToken = (team: string) => issuer.token({ aud: 'sts.amazonaws.com', sub: `teams:${team}:environment:env-1:sub:user-42` });

let files = 0;
async function envFor(roleArn: string, token: string) {
  const tokenFile = await writeWebIdentityTokenFile(path.join(dir, `${++files}-token`), token);
  return { ...networkTrapEnv(), ...awsWebIdentityEnv({ roleArn, tokenFile, sessionName: SESSION, stsUrl: sts.url }) };
}

const cases = [
  ['session tags', ROLE_BY_TAG, taggedToken],
  ['subject format', ROLE_BY_SUB, subjectToken],
] as const;

const clients = {
  'AWS SDK for JavaScript (fromTokenFile)': (env: Record<string, string>) => resolveAwsJs({ provider: 'fromTokenFile', env }),
  'AWS SDK for JavaScript (fromNodeProviderChain)': (env: Record<string, string>) => resolveAwsJs({ provider: 'fromNodeProviderChain', env }),
  boto3: (env: Record<string, string>) => resolveBoto3({ env }),
};

describe.each(Object.entries(clients))('%s', (_client, resolve) => {
  it.each(cases)('a role scoped by %s admits a token of the team', async (_how, role, make) => {
    const r = await resolve(await envFor(role, make('abc')));
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    const issued = sts.issued.get(r.value.accessKeyId)!;
    expect(issued).toMatchObject({ roleArn: role, roleSessionName: SESSION });
    expect(r.value.secretAccessKey).toBe(issued.secretAccessKey);
    if (role === ROLE_BY_TAG) expect(issued.sessionTags).toEqual({ tags: { teams: 'abc' }, transitiveTagKeys: ['teams'] });
    else expect(issued.sessionTags).toBeUndefined();
  });

  it.each(cases)('a role scoped by %s refuses a token of another team with AccessDenied', async (_how, role, make) => {
    const r = await resolve(await envFor(role, make('xyz')));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code, JSON.stringify(r.error)).toBe('AccessDenied');
    expect(r.error.status).toBe(403);
    expect(r.error.message).toContain('Not authorized to perform sts:AssumeRoleWithWebIdentity');
    expect(sts.requests.at(-1)).toMatchObject({ ok: false, errorCode: 'AccessDenied', roleArn: role });
  });
});
