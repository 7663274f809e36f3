// The trust policy referee, table-driven with the cases AWS's IAM documentation gives (OIDC trust
// policies, session tags, multivalued context keys, IfExists, Null, explicit deny), then wired
// into the AWS STS stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateCondition, evaluateTrustPolicy, oidcProviderName, sessionTagsFromClaims, SESSION_TAGS_CLAIM, webIdentityContext } from './helpers/iam-policy.js';
import type { PolicyDocument, PolicyStatement } from './helpers/iam-policy.js';
import { startAwsSts } from './helpers/standins.js';
import type { AwsStsStandIn } from './helpers/standins.js';
import { startTestIssuer } from './helpers/test-issuer.js';
import type { TestIssuer } from './helpers/test-issuer.js';

const GH = 'token.actions.githubusercontent.com';
const GH_PROVIDER = `arn:aws:iam::123456789012:oidc-provider/${GH}`;
const ASSUME = 'sts:AssumeRoleWithWebIdentity';
const TAG = 'sts:TagSession';

const ghContext = (sub: string, extra: { aud?: string; tags?: Record<string, string> } = {}) =>
  webIdentityContext({
    account: '123456789012',
    issuer: `https://${GH}`,
    aud: extra.aud ?? 'sts.amazonaws.com',
    sub,
    sessionTags: extra.tags ? { tags: extra.tags, transitiveTagKeys: [] } : undefined,
  });

const policy = (...Statement: PolicyStatement[]): PolicyDocument => ({ Version: '2012-10-17', Statement });

// The example trust policy of "Configuring a role for GitHub OIDC identity provider".
const githubPolicy = policy({
  Effect: 'Allow',
  Principal: { Federated: GH_PROVIDER },
  Action: ASSUME,
  Condition: {
    StringEquals: { [`${GH}:aud`]: 'sts.amazonaws.com' },
    StringLike: { [`${GH}:sub`]: 'repo:octo-org/octo-repo:*' },
  },
});

// A team-scoped role with session tags: the pattern of "Passing session tags using
// AssumeRoleWithWebIdentity", where the trust policy must allow sts:TagSession too.
const tagPolicy = policy({
  Effect: 'Allow',
  Principal: { Federated: GH_PROVIDER },
  Action: [ASSUME, TAG],
  Condition: { StringEquals: { [`${GH}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/teams': 'team-a' } },
});

describe('evaluateTrustPolicy', () => {
  it.each([
    ['the GitHub example admits a run of the repository', githubPolicy, [ASSUME], ghContext('repo:octo-org/octo-repo:ref:refs/heads/main'), 'Allow'],
    ['the GitHub example refuses another repository', githubPolicy, [ASSUME], ghContext('repo:octo-org/other-repo:ref:refs/heads/main'), 'ImplicitDeny'],
    ['the GitHub example refuses another audience', githubPolicy, [ASSUME], ghContext('repo:octo-org/octo-repo:x', { aud: 'other' }), 'ImplicitDeny'],
    ['StringLike is case-sensitive on values', githubPolicy, [ASSUME], ghContext('repo:Octo-Org/octo-repo:x'), 'ImplicitDeny'],
    ['condition key names are case-insensitive', policy({ Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, Action: ASSUME, Condition: { StringEquals: { [`${GH.toUpperCase()}:SUB`]: 'abc' } } }), [ASSUME], ghContext('abc'), 'Allow'],
    ['action names are case-insensitive and take wildcards', policy({ Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, Action: 'STS:AssumeRoleWith*' }), [ASSUME], ghContext('x'), 'Allow'],
    ['another provider is not the principal', policy({ Effect: 'Allow', Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/other.example' }, Action: ASSUME }), [ASSUME], ghContext('x'), 'ImplicitDeny'],
    ['an AWS principal does not admit a federated one', policy({ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: ASSUME }), [ASSUME], ghContext('x'), 'ImplicitDeny'],
    ['Principal "*" admits anyone', policy({ Effect: 'Allow', Principal: '*', Action: ASSUME }), [ASSUME], ghContext('x'), 'Allow'],
    ['NotAction allows what it does not name', policy({ Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, NotAction: 'sts:AssumeRole' }), [ASSUME], ghContext('x'), 'Allow'],
    ['NotAction refuses what it names', policy({ Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, NotAction: 'sts:AssumeRoleWith*' }), [ASSUME], ghContext('x'), 'ImplicitDeny'],
    [
      'an explicit Deny wins over an Allow',
      policy(
        { Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, Action: ASSUME },
        { Sid: 'NoForks', Effect: 'Deny', Principal: '*', Action: ASSUME, Condition: { StringLike: { [`${GH}:sub`]: 'repo:*/fork:*' } } },
      ),
      [ASSUME], ghContext('repo:someone/fork:ref:x'), 'ExplicitDeny',
    ],
    ['a session-tag policy admits the team', tagPolicy, [ASSUME, TAG], ghContext('s', { tags: { teams: 'team-a' } }), 'Allow'],
    ['a session-tag policy refuses another team', tagPolicy, [ASSUME, TAG], ghContext('s', { tags: { teams: 'team-b' } }), 'ImplicitDeny'],
    ['a token without the tag is refused by StringEquals on aws:RequestTag', tagPolicy, [ASSUME], ghContext('s'), 'ImplicitDeny'],
    ['tags need sts:TagSession allowed too', githubPolicy, [ASSUME, TAG], ghContext('repo:octo-org/octo-repo:x', { tags: { teams: 'team-a' } }), 'ImplicitDeny'],
    ['StringEqualsIgnoreCase ignores case', policy({ Effect: 'Allow', Principal: { Federated: GH_PROVIDER }, Action: [ASSUME, TAG], Condition: { StringEqualsIgnoreCase: { 'aws:RequestTag/teams': 'TEAM-A' } } }), [ASSUME, TAG], ghContext('s', { tags: { teams: 'team-a' } }), 'Allow'],
  ] as const)('%s', (_name, doc, actions, context, decision) => {
    const result = evaluateTrustPolicy(doc, [...actions], context);
    const combined = result.actions.some((a) => a.decision === 'ExplicitDeny') ? 'ExplicitDeny' : result.allowed ? 'Allow' : 'ImplicitDeny';
    expect(combined).toBe(decision);
    expect(result.allowed).toBe(decision === 'Allow');
  });

  it('reports each statement and condition it judged', () => {
    const result = evaluateTrustPolicy(githubPolicy, [ASSUME], ghContext('repo:octo-org/other:x'));
    expect(result.actions[0]!.statements[0]).toMatchObject({
      principal: true,
      action: true,
      applies: false,
      conditions: [
        { operator: 'StringEquals', key: `${GH}:aud`, result: true },
        { operator: 'StringLike', key: `${GH}:sub`, policyValues: ['repo:octo-org/octo-repo:*'], contextValues: ['repo:octo-org/other:x'], result: false },
      ],
    });
  });

  it.each([
    ['NumericEquals', /unsupported condition operator "NumericEquals"/],
    ['ForAnyValue:Null', /unsupported condition operator/],
    ['StringEqual', /unsupported condition operator/],
  ])('refuses the operator %s as IAM refuses to save it', (operator, message) => {
    const doc = policy({ Effect: 'Allow', Principal: '*', Action: ASSUME, Condition: { [operator]: { [`${GH}:sub`]: 'x' } } });
    expect(() => evaluateTrustPolicy(doc, [ASSUME], ghContext('x'))).toThrow(message);
  });
});

describe('evaluateCondition: operators over single and multivalued keys', () => {
  const keys = { 'p:sub': ['teams:abc:sub:u1'], 'aws:TagKeys': ['teams', 'environment'], 'aws:RequestTag/teams': ['abc'] };
  it.each([
    // String operators over a present single-valued key.
    ['StringEquals', 'p:sub', ['teams:abc:sub:u1'], true],
    ['StringEquals', 'p:sub', ['TEAMS:abc:sub:u1'], false],
    ['StringEquals', 'p:sub', ['x', 'teams:abc:sub:u1'], true],
    ['StringNotEquals', 'p:sub', ['x', 'y'], true],
    ['StringNotEquals', 'p:sub', ['teams:abc:sub:u1'], false],
    // Several values under a negated operator act as AND: the key must equal none of them.
    ['StringNotEquals', 'p:sub', ['x', 'teams:abc:sub:u1'], false],
    ['StringEqualsIgnoreCase', 'p:sub', ['TEAMS:ABC:SUB:U1'], true],
    ['StringNotEqualsIgnoreCase', 'p:sub', ['TEAMS:ABC:SUB:U1'], false],
    ['StringLike', 'p:sub', ['teams:abc:*'], true],
    ['StringLike', 'p:sub', ['teams:ab?:sub:u?'], true],
    ['StringLike', 'p:sub', ['teams:abcd:*'], false],
    ['StringNotLike', 'p:sub', ['teams:xyz:*'], true],
    ['StringNotLike', 'p:sub', ['teams:*'], false],
    // An absent key: positive operators fail, negated ones hold; IfExists holds.
    ['StringEquals', 'p:missing', ['x'], false],
    ['StringLike', 'p:missing', ['*'], false],
    ['StringNotEquals', 'p:missing', ['x'], true],
    ['StringNotLike', 'p:missing', ['x'], true],
    ['StringEqualsIfExists', 'p:missing', ['x'], true],
    ['StringEqualsIfExists', 'p:sub', ['x'], false],
    ['StringLikeIfExists', 'p:sub', ['teams:abc:*'], true],
    // Null: "true" wants the key absent, "false" present.
    ['Null', 'p:missing', [true], true],
    ['Null', 'p:sub', ['true'], false],
    ['Null', 'aws:TagKeys', ['false'], true],
    ['Null', 'p:missing', [false], false],
    // Multivalued aws:TagKeys, as the IAM guide's "ForAllValues" and "ForAnyValue" examples.
    ['ForAllValues:StringEquals', 'aws:TagKeys', ['teams', 'environment', 'host'], true],
    ['ForAllValues:StringEquals', 'aws:TagKeys', ['teams'], false],
    ['ForAllValues:StringEquals', 'p:missing', ['teams'], true],
    ['ForAnyValue:StringEquals', 'aws:TagKeys', ['teams'], true],
    ['ForAnyValue:StringEquals', 'aws:TagKeys', ['host'], false],
    ['ForAnyValue:StringEquals', 'p:missing', ['teams'], false],
    ['ForAnyValue:StringNotEquals', 'aws:TagKeys', ['teams'], true],
    ['ForAllValues:StringNotEquals', 'aws:TagKeys', ['host'], true],
    ['ForAllValues:StringNotEquals', 'aws:TagKeys', ['teams'], false],
    ['ForAllValues:StringLike', 'aws:TagKeys', ['t*', 'env*'], true],
    ['ForAnyValue:StringEqualsIfExists', 'p:missing', ['x'], true],
    // No set operator over a multivalued key: positive = any matches, negated = none matches.
    ['StringEquals', 'aws:TagKeys', ['environment'], true],
    ['StringNotEquals', 'aws:TagKeys', ['environment'], false],
    ['StringEquals', 'aws:RequestTag/teams', ['abc'], true],
    ['StringEquals', 'AWS:REQUESTTAG/TEAMS', ['abc'], true],
  ] as const)('%s %s %j → %s', (operator, key, values, expected) => {
    expect(evaluateCondition(operator, key, [...values], keys).result).toBe(expected);
  });
});

describe('sessionTagsFromClaims', () => {
  const claim = (principal_tags: unknown, transitive_tag_keys?: unknown) => ({ [SESSION_TAGS_CLAIM]: { principal_tags, transitive_tag_keys } });
  it('reads one value per tag and the transitive keys', () => {
    expect(sessionTagsFromClaims(claim({ teams: ['abc:def'], environment: ['env-1'] }, ['teams']))).toEqual({
      tags: { teams: 'abc:def', environment: 'env-1' },
      transitiveTagKeys: ['teams'],
    });
    expect(sessionTagsFromClaims({})).toBeUndefined();
  });

  it('accepts letters, spaces and digits of any script and _.:/=+-@', () => {
    expect(sessionTagsFromClaims(claim({ 'équipe 1': ['Zürich_.:/=+-@ 東京 ٣'] }))!.tags).toEqual({ 'équipe 1': 'Zürich_.:/=+-@ 東京 ٣' });
  });

  it.each([
    ['51 tags', claim(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, ['v']]))), /at most 50 session tags/],
    ['a 129-character key', claim({ ['k'.repeat(129)]: ['v'] }), /between 1 and 128/],
    ['a 257-character value', claim({ teams: ['v'.repeat(257)] }), /less than or equal to 256/],
    ['a ! in a value', claim({ teams: ['a!b'] }), /regular expression pattern/],
    ['a comma in a key', claim({ 'a,b': ['v'] }), /regular expression pattern/],
    ['two values for a tag', claim({ teams: ['a', 'b'] }), /exactly one string value/],
    ['an aws: key', claim({ 'aws:team': ['v'] }), /cannot start with aws:/],
    ['keys differing only in case', claim({ Teams: ['a'], teams: ['b'] }), /duplicate session tag key/],
    ['a transitive key that is no tag', claim({ teams: ['a'] }, ['environment']), /not one of the session tags/],
    ['no principal_tags', { [SESSION_TAGS_CLAIM]: {} }, /principal_tags/],
  ])('refuses %s', (_name, claims, message) => {
    expect(() => sessionTagsFromClaims(claims)).toThrow(message);
  });

  it('accepts exactly 50 tags, 128-character keys and 256-character values', () => {
    expect(Object.keys(sessionTagsFromClaims(claim(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, ['v']]))))!.tags)).toHaveLength(50);
    expect(sessionTagsFromClaims(claim({ ['k'.repeat(128)]: ['v'.repeat(256)] }))).toBeDefined();
  });
});

describe('AWS STS stand-in with trust policy documents', () => {
  const ROLE_TAGS = 'arn:aws:iam::123456789012:role/team-a-by-tag';
  const ROLE_SUB = 'arn:aws:iam::123456789012:role/team-a-by-sub';
  let issuer: TestIssuer;
  let sts: AwsStsStandIn;

  beforeAll(async () => {
    issuer = await startTestIssuer({ path: '/oz' });
    const provider = oidcProviderName(issuer.url);
    const federated = { Federated: `arn:aws:iam::123456789012:oidc-provider/${provider}` };
    sts = await startAwsSts({
      trustedIssuers: [issuer.url],
      trustPolicies: {
        [ROLE_TAGS]: policy({ Effect: 'Allow', Principal: federated, Action: [ASSUME, TAG], Condition: { StringEquals: { [`${provider}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/teams': 'team-a' } } }),
        [ROLE_SUB]: policy({ Effect: 'Allow', Principal: federated, Action: ASSUME, Condition: { StringEquals: { [`${provider}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${provider}:sub`]: 'teams:team-a:*' } } }),
      },
    });
  });

  afterAll(async () => {
    await Promise.all([issuer?.close(), sts?.close()]);
  });

  async function assume(roleArn: string, token: string) {
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: 'Oz_Run_1', WebIdentityToken: token });
    const res = await fetch(sts.url, { method: 'POST', body: form });
    const text = await res.text();
    return { status: res.status, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1], record: sts.requests.at(-1)! };
  }
  const tagged = (teams: string, extra: Record<string, unknown> = {}) =>
    issuer.token({ aud: 'sts.amazonaws.com', sub: 'user-42', [SESSION_TAGS_CLAIM]: { principal_tags: { teams: [teams] }, transitive_tag_keys: ['teams'] }, ...extra });

  it('admits a token tagged with the team and keeps its session tags', async () => {
    const r = await assume(ROLE_TAGS, tagged('team-a'));
    expect(r.status).toBe(200);
    expect(r.record.sessionTags).toEqual({ tags: { teams: 'team-a' }, transitiveTagKeys: ['teams'] });
    expect(r.record.credentials!.sessionTags).toEqual(r.record.sessionTags);
    expect(r.record.policyDecision!.actions.map((a) => [a.action, a.decision])).toEqual([[ASSUME, 'Allow'], [TAG, 'Allow']]);
  });

  it.each([
    ['a token tagged with another team', ROLE_TAGS, () => tagged('team-b')],
    ['a token with no tags', ROLE_TAGS, () => issuer.token({ aud: 'sts.amazonaws.com', sub: 'teams:team-a:sub:u' })],
    ['a subject of another team', ROLE_SUB, () => issuer.token({ aud: 'sts.amazonaws.com', sub: 'teams:team-b:sub:u' })],
    ['tags on a role that does not allow sts:TagSession', ROLE_SUB, () => tagged('team-a', { sub: 'teams:team-a:sub:u' })],
    ['a role that does not exist', 'arn:aws:iam::123456789012:role/nobody', () => tagged('team-a')],
  ])('answers AccessDenied to %s', async (_name, role, make) => {
    const r = await assume(role, make());
    expect(r).toMatchObject({ status: 403, code: 'AccessDenied', message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity' });
    expect(r.record.credentials).toBeUndefined();
  });

  it('admits a subject of the team by StringLike', async () => {
    const r = await assume(ROLE_SUB, issuer.token({ aud: 'sts.amazonaws.com', sub: 'teams:team-a:environment:env-1:sub:user-42' }));
    expect(r.status).toBe(200);
    expect(r.record.policyDecision!.allowed).toBe(true);
  });

  it('refuses invalid session tags in the token with InvalidIdentityToken', async () => {
    const r = await assume(ROLE_TAGS, tagged('team a!'));
    expect(r).toMatchObject({ status: 400, code: 'InvalidIdentityToken' });
    expect(r.message).toMatch(/regular expression pattern/);
  });

  it('refuses a malformed trust policy when it is set up', async () => {
    await expect(startAwsSts({ trustedIssuers: [issuer.url], trustPolicies: { [ROLE_SUB]: policy({ Effect: 'Allow', Principal: '*', Action: ASSUME, Condition: { StringMatches: { a: 'b' } } }) } })).rejects.toThrow(/unsupported condition operator/);
  });
});
