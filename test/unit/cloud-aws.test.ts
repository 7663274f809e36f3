import { describe, expect, it } from 'vitest';
import {
  AWS_TAGS_CLAIM,
  evaluateAwsTrustPolicy,
  evaluateCondition,
  parseOperator,
  parseTrustPolicy,
} from '../../src/cloud/aws-policy.js';
import { OzError } from '../../src/core/errors.js';
import { NOW, signToken, type Signed } from '../helpers/cloud-tokens.js';

const HP = 'oidc.example.com/oz';
const PROVIDER = `arn:aws:iam::123456789012:oidc-provider/${HP}`;

function policy(conditions: Record<string, Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Federated: PROVIDER }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: conditions, ...extra }],
  };
}

function explain(doc: unknown, token: Signed = signToken({})) {
  return evaluateAwsTrustPolicy(parseTrustPolicy(JSON.stringify(doc), 'policy.json'), token.decoded, { now: NOW, tokenText: token.text });
}

function failing(v: ReturnType<typeof explain>) {
  return v.checks.filter((c) => !c.ok).map((c) => c.name);
}

// Each row is a case from IAM's documentation of condition operators, multivalued context
// keys and missing keys: [operator, policy values, request values (undefined: key absent), result].
const CASES: [string, string[], string[] | undefined, boolean][] = [
  ['StringEquals', ['a'], ['a'], true],
  ['StringEquals', ['a', 'b'], ['b'], true], // several values: OR
  ['StringEquals', ['A'], ['a'], false], // values are case-sensitive
  ['StringEquals', ['a'], undefined, false], // a missing key does not match
  ['StringEqualsIgnoreCase', ['A'], ['a'], true],
  ['StringNotEquals', ['a', 'b'], ['b'], false], // negated: must match none (NOR)
  ['StringNotEquals', ['a', 'b'], ['c'], true],
  ['StringNotEquals', ['a'], undefined, true], // a negated operator holds over a missing key
  ['StringNotEqualsIgnoreCase', ['A'], ['a'], false],
  ['StringLike', ['teams:abc:*'], ['teams:abc:sub:u'], true],
  ['StringLike', ['teams:abc:*'], ['teams:abd:sub:u'], false],
  ['StringLike', ['teams:abc:*'], ['teams:abc:'], true], // * matches nothing too
  ['StringLike', ['user-?'], ['user-1'], true],
  ['StringLike', ['user-?'], ['user-12'], false], // ? is exactly one character
  ['StringLike', ['User-*'], ['user-1'], false], // case-sensitive
  ['StringLike', ['a${*}b'], ['a*b'], true], // ${*} is a literal *
  ['StringLike', ['a${*}b'], ['axb'], false],
  ['StringLike', ['a.b'], ['axb'], false], // . is not a wildcard
  ['StringNotLike', ['teams:abc:*'], ['teams:abc:x'], false],
  ['StringNotLike', ['teams:abc:*'], undefined, true],
  ['StringEqualsIfExists', ['a'], undefined, true], // IfExists: a missing key passes
  ['StringEqualsIfExists', ['a'], ['b'], false], // ... a present one is compared
  ['StringLikeIfExists', ['a*'], ['ab'], true],
  ['Null', ['true'], undefined, true], // Null:true means the key is absent
  ['Null', ['true'], ['x'], false],
  ['Null', ['false'], ['x'], true],
  ['Null', ['false'], undefined, false],
  ['ForAllValues:StringEquals', ['teams', 'environment'], ['teams'], true],
  ['ForAllValues:StringEquals', ['teams', 'environment'], ['teams', 'email'], false],
  ['ForAllValues:StringEquals', ['teams'], undefined, true], // vacuously true over a missing key
  ['ForAllValues:StringEquals', ['teams'], [], true],
  ['ForAnyValue:StringEquals', ['teams'], ['email', 'teams'], true],
  ['ForAnyValue:StringEquals', ['teams'], ['email'], false],
  ['ForAnyValue:StringEquals', ['teams'], undefined, false],
  ['ForAnyValue:StringNotEquals', ['a'], ['a', 'b'], true],
  ['ForAnyValue:StringNotEquals', ['a'], ['a'], false],
  ['ForAllValues:StringNotLike', ['x*'], ['a', 'b'], true],
  ['ForAllValues:StringNotLike', ['x*'], ['a', 'xy'], false],
  ['ForAnyValue:StringLikeIfExists', ['x*'], undefined, true],
];

describe('IAM condition operators', () => {
  it.each(CASES)('%s %j over %j is %s', (op, policyValues, requestValues, expected) => {
    expect(evaluateCondition(parseOperator(op), policyValues, requestValues)).toBe(expected);
  });

  it.each(['NumericEquals', 'StringEquals2', 'ForAnyValue:Null', 'NullIfExists', 'ArnLike'])('refuses %s as an operator it cannot evaluate', (op) => {
    expect(() => parseOperator(op)).toThrow(/cannot evaluate/);
  });
});

describe('evaluateAwsTrustPolicy', () => {
  it('accepts a token whose aud and sub match, and shows every condition with both values', () => {
    const v = explain(policy({ StringEquals: { [`${HP}:aud`]: 'sts.amazonaws.com', [`${HP}:sub`]: ['user-1', 'user-42'] } }));
    expect(v.accepted).toBe(true);
    const sub = v.checks.find((c) => c.name === `StringEquals ${HP}:sub`);
    expect(sub).toMatchObject({ expected: '["user-1","user-42"]', actual: 'user-42', ok: true, group: 'statement #1: Allow' });
  });

  it('refuses another subject: several keys under one operator are ANDed', () => {
    const v = explain(policy({ StringEquals: { [`${HP}:aud`]: 'sts.amazonaws.com', [`${HP}:sub`]: 'user-1' } }));
    expect(v.accepted).toBe(false);
    expect(failing(v)).toEqual([`StringEquals ${HP}:sub`, 'sts:AssumeRoleWithWebIdentity allowed']);
  });

  it('ANDs several operators', () => {
    const v = explain(policy({ StringEquals: { [`${HP}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${HP}:sub`]: 'teams:*' } }));
    expect(v.accepted).toBe(false);
    expect(failing(v)).toContain(`StringLike ${HP}:sub`);
  });

  it('compares condition key names case-insensitively and values case-sensitively', () => {
    expect(explain(policy({ StringEquals: { [`OIDC.EXAMPLE.COM/oz:SUB`]: 'user-42' } })).accepted).toBe(true);
    expect(explain(policy({ StringEquals: { [`${HP}:sub`]: 'USER-42' } })).accepted).toBe(false);
    expect(explain(policy({ StringEqualsIgnoreCase: { [`${HP}:sub`]: 'USER-42' } })).accepted).toBe(true);
  });

  it('a key of another provider is absent from the request: refused, with a hint', () => {
    const v = explain(policy({ StringEquals: { 'token.actions.githubusercontent.com:sub': 'user-42' } }));
    expect(v.accepted).toBe(false);
    expect(v.checks.find((c) => c.name.includes('githubusercontent'))).toMatchObject({ actual: '(absent)', note: expect.stringContaining(`${HP}:`) });
  });

  it('refuses a principal for another issuer or another account', () => {
    const other = policy({}, { Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/other.example.com' } });
    expect(failing(explain(other))).toContain('principal');
    const getRole = { Role: { Arn: 'arn:aws:iam::999999999999:role/r', AssumeRolePolicyDocument: policy({}) } };
    expect(failing(explain(getRole))).toContain('principal');
    const sameAccount = { Role: { Arn: 'arn:aws:iam::123456789012:role/r', AssumeRolePolicyDocument: policy({}) } };
    const v = explain(sameAccount);
    expect(v.accepted).toBe(true);
    expect(v.outcome).toMatchObject({ role_arn: 'arn:aws:iam::123456789012:role/r' });
  });

  it('reads get-role output whose document is URL-encoded, as the raw API returns it', () => {
    const doc = encodeURIComponent(JSON.stringify(policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } })));
    expect(explain({ Role: { Arn: 'arn:aws:iam::123456789012:role/r', AssumeRolePolicyDocument: doc } }).accepted).toBe(true);
  });

  it('a matching Deny statement wins over an Allow', () => {
    const doc = policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } });
    doc.Statement.push({ Effect: 'Deny', Principal: { Federated: PROVIDER }, Action: 'sts:*', Condition: { StringEquals: { [`${HP}:sub`]: 'user-42' } } });
    const v = explain(doc);
    expect(v.accepted).toBe(false);
    expect(v.checks.find((c) => c.name === 'sts:AssumeRoleWithWebIdentity allowed')?.actual).toBe('denied by statement #2');
  });

  it('matches actions with wildcards and NotAction', () => {
    expect(explain(policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } }, { Action: 'STS:AssumeRole*' })).accepted).toBe(true);
    expect(explain(policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } }, { Action: 'sts:AssumeRole' })).accepted).toBe(false);
    const notAction = policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } }, { NotAction: 'iam:*' });
    delete (notAction.Statement[0] as Record<string, unknown>).Action;
    expect(explain(notAction).accepted).toBe(true);
  });

  describe('session tags', () => {
    const tagged = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-a'], environment: ['env-1'] }, transitive_tag_keys: ['teams'] } });
    const byTags = policy({ StringEquals: { [`${HP}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/teams': 'team-a' } }, { Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'] });

    it('a token with tags needs sts:TagSession as well', () => {
      expect(explain(byTags, tagged).accepted).toBe(true);
      const noTagSession = policy({ StringEquals: { 'aws:RequestTag/teams': 'team-a' } });
      const v = explain(noTagSession, tagged);
      expect(v.accepted).toBe(false);
      expect(v.checks.find((c) => c.name === 'sts:TagSession allowed')).toMatchObject({ ok: false, note: expect.stringContaining('sts:TagSession') });
    });

    it('refuses another team, and a token without tags, with a hint', () => {
      const other = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-b'] } } });
      expect(explain(byTags, other).accepted).toBe(false);
      const v = explain(byTags);
      expect(v.accepted).toBe(false);
      expect(v.checks.find((c) => c.name === 'StringEquals aws:RequestTag/teams')?.note).toMatch(/--aws-session-tags/);
    });

    it('aws:TagKeys is multivalued: ForAllValues and ForAnyValue', () => {
      const onlyKnown = policy({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['teams', 'environment'] } }, { Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'] });
      expect(explain(onlyKnown, tagged).accepted).toBe(true);
      const narrower = policy({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['teams'] } }, { Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'] });
      expect(explain(narrower, tagged).accepted).toBe(false);
      const any = policy({ 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['environment'] } }, { Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'] });
      expect(explain(any, tagged).accepted).toBe(true);
    });
  });

  it('checks the token itself: algorithm, kid, https issuer, expiry', () => {
    const ok = policy({ StringEquals: { [`${HP}:sub`]: 'user-42' } });
    expect(explain(ok, signToken({}, { alg: 'ES256' })).accepted).toBe(true);
    expect(failing(explain(ok, signToken({}, { header: { alg: 'HS256' } })))).toContain('signature algorithm (alg)');
    expect(failing(explain(ok, signToken({}, { header: { kid: undefined } })))).toContain('key ID (kid)');
    expect(failing(explain(ok, signToken({ exp: Math.floor(NOW.getTime() / 1000) - 1 })))).toContain('not expired (exp)');
    expect(failing(explain(ok, signToken({ aud: undefined })))).toContain('audience (aud)');
    const custom = explain(ok, signToken({ aud: 'https://oz.example.com/aws' }));
    expect(custom.accepted).toBe(true);
    expect(custom.checks.find((c) => c.name === 'audience (aud)')?.note).toMatch(/get-open-id-connect-provider/);
    const http = policy({}, { Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/127.0.0.1:8787' } });
    expect(failing(explain(http, signToken({ iss: 'http://127.0.0.1:8787' })))).toEqual(['issuer (iss)']);
  });

  it.each([
    ['not JSON', '{', /policy.json is not JSON/],
    ['no Statement', '{"Version":"2012-10-17"}', /has no Statement/],
    ['a bad Effect', '{"Statement":{"Effect":"Permit","Principal":"*","Action":"*"}}', /Effect "Permit"/],
    ['an unknown operator', JSON.stringify(policy({ DateLessThan: { 'aws:CurrentTime': 'x' } })), /DateLessThan/],
    ['a role without a document', '{"Role":{"Arn":"arn:aws:iam::123456789012:role/r"}}', /no AssumeRolePolicyDocument/],
  ])('a document with %s is a usage error, not a verdict', (_what, text, message) => {
    try {
      parseTrustPolicy(text, 'policy.json');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(OzError);
      expect((e as OzError).code).toBe('usage');
      expect((e as OzError).message).toMatch(message);
    }
  });
});
