import { describe, expect, it } from 'vitest';
import {
  AWS_TAGS_CLAIM,
  awsRequestOf,
  evaluateAwsTrustPolicy,
  evaluateCondition,
  globToRegExp,
  parseOperator,
  parseTrustPolicy,
  sessionTagsOf,
} from '../../src/cloud/aws-policy.js';
import { OzError } from '../../src/core/errors.js';
import { NOW, signToken, type Signed } from '../helpers/cloud-tokens.js';

const HP = 'oidc.example.com/oz';
const PROVIDER = `arn:aws:iam::123456789012:oidc-provider/${HP}`;
const AWRWI = 'sts:AssumeRoleWithWebIdentity';
const ALLOWED = 'an Allow statement matches and no Deny statement does';

function statement(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { Effect: 'Allow', Principal: { Federated: PROVIDER }, Action: AWRWI, ...extra };
}

function explain(doc: unknown, token: Signed = signToken({}), tokenText = token.text) {
  return evaluateAwsTrustPolicy(parseTrustPolicy(JSON.stringify(doc), 'policy.json'), token.decoded, { now: NOW, tokenText });
}

function named(v: ReturnType<typeof explain>, name: string) {
  return v.checks.filter((c) => c.name === name);
}

function usageMessage(text: string): string {
  try {
    parseTrustPolicy(text, 'policy.json');
  } catch (e) {
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('usage');
    return (e as OzError).message;
  }
  throw new Error('parsed');
}

describe('parseTrustPolicy refuses what is not a trust policy, naming the fault', () => {
  const P = 'policy.json is not an IAM trust policy: ';
  const st = (s: Record<string, unknown>) => JSON.stringify({ Statement: [s] });
  it.each([
    ['[]', `${P}expected a JSON object with a Statement`],
    ['"x"', `${P}expected a JSON object with a Statement`],
    ['{"Statement":[]}', `${P}its Statement list is empty`],
    ['{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},7]}', `${P}statement #2 is not an object`],
    [st({ Principal: '*', Action: '*' }), `${P}statement #1 has Effect (none); expected Allow or Deny`],
    [st({ Effect: 1, Principal: '*', Action: '*' }), `${P}statement #1 has Effect "1"; expected Allow or Deny`],
    [st({ Effect: 'Allow', Principal: '*', Action: 3 }), `${P}statement #1: Action must be a string or a list of strings`],
    [st({ Effect: 'Allow', Principal: '*', Action: ['sts:*', 3] }), `${P}statement #1: Action must be a string or a list of strings`],
    [st({ Effect: 'Allow', Principal: '*', NotAction: [3] }), `${P}statement #1: NotAction must be a string or a list of strings`],
    [st({ Effect: 'Allow', Principal: '*' }), `${P}statement #1 has neither Action nor NotAction`],
    [st({ Effect: 'Allow', Action: '*' }), `${P}statement #1 has neither Principal nor NotPrincipal`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: [] }), `${P}statement #1: Condition must be an object of operators`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: 'x' }), `${P}statement #1: Condition must be an object of operators`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: { StringEquals: 'x' } }), `${P}statement #1: the StringEquals condition must be an object of keys and values`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: { StringEquals: { k: null } } }), `${P}statement #1: the value of StringEquals k must be a string, a number, a boolean or a list of them`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: { StringEquals: { k: { a: 1 } } } }), `${P}statement #1: the value of StringEquals k must be a string, a number, a boolean or a list of them`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: { StringEquals: { k: ['a', null] } } }), `${P}statement #1: the value of StringEquals k must be a string, a number, a boolean or a list of them`],
    [st({ Effect: 'Allow', Principal: '*', Action: '*', Condition: { StringEquals: { k: [['a']] } } }), `${P}statement #1: the value of StringEquals k must be a string, a number, a boolean or a list of them`],
    ['{"Role":{"Arn":"arn:aws:iam::1:role/r"}}', `${P}the role has no AssumeRolePolicyDocument`],
  ])('%s', (text, message) => {
    expect(usageMessage(text)).toBe(message);
  });

  it('names an operator it cannot evaluate, and the statement that uses it', () => {
    expect(usageMessage(JSON.stringify({ Statement: [statement({ Condition: { DateLessThan: { k: 'x' } } })] }))).toBe(
      'statement #1 uses the condition operator "DateLessThan", which oz cannot evaluate; it knows StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike, StringNotLike, Null, with ForAnyValue:/ForAllValues: and IfExists (not on Null)',
    );
  });
});

describe('parseTrustPolicy accepts', () => {
  it.each([
    ['strings, numbers and booleans as condition values', { StringEquals: { a: 'x', b: 3, c: true, d: ['x', 2, false] } }],
  ])('%s', (_what, Condition) => {
    expect(parseTrustPolicy(JSON.stringify({ Statement: statement({ Condition }) }), 'p').statements).toEqual([statement({ Condition })]);
  });

  it.each([
    ['a policy document with one Statement object', JSON.stringify({ Statement: statement() }), { statements: [statement()] }],
    ['NotPrincipal and NotAction in place of Principal and Action', JSON.stringify({ Statement: [{ Effect: 'Deny', NotPrincipal: '*', NotAction: ['iam:*'] }] }), { statements: [{ Effect: 'Deny', NotPrincipal: '*', NotAction: ['iam:*'] }] }],
    ['get-role output with the document decoded (the CLI)', JSON.stringify({ Role: { Arn: 'arn:aws:iam::1:role/r', AssumeRolePolicyDocument: { Statement: [statement()] } } }), { statements: [statement()], roleArn: 'arn:aws:iam::1:role/r' }],
    ['get-role output with the document as JSON text', JSON.stringify({ Role: { Arn: 'arn:aws:iam::1:role/r', AssumeRolePolicyDocument: JSON.stringify({ Statement: [statement()] }) } }), { statements: [statement()], roleArn: 'arn:aws:iam::1:role/r' }],
    ['get-role output without a string Arn', JSON.stringify({ Role: { Arn: 7, AssumeRolePolicyDocument: { Statement: [statement()] } } }), { statements: [statement()] }],
  ])('%s', (_what, text, expected) => {
    expect(parseTrustPolicy(text, 'p')).toEqual(expected);
  });

  it('a document that starts with % but is not URL-encoding is read as it is (and so refused as JSON)', () => {
    expect(() => parseTrustPolicy(JSON.stringify({ Role: { AssumeRolePolicyDocument: '%E0%A4%A' } }), 'p')).toThrow(/^p is not JSON/);
  });
});

describe('parseOperator', () => {
  it.each([
    ['StringEquals', { base: 'StringEquals', ifExists: false }],
    ['StringNotLikeIfExists', { base: 'StringNotLike', ifExists: true }],
    ['ForAnyValue:StringLike', { base: 'StringLike', set: 'ForAnyValue', ifExists: false }],
    ['ForAllValues:StringEqualsIgnoreCaseIfExists', { base: 'StringEqualsIgnoreCase', set: 'ForAllValues', ifExists: true }],
    ['Null', { base: 'Null', ifExists: false }],
  ])('%s', (name, expected) => {
    expect(parseOperator(name)).toEqual(expected);
  });

  it.each(['IfExists', 'ForAnyValue:', 'ForAllValues:NullIfExists', 'ForAnyValueStringEquals', 'stringequals'])('refuses %s', (name) => {
    expect(() => parseOperator(name)).toThrow(`the policy uses the condition operator ${JSON.stringify(name)}, which oz cannot evaluate`);
  });
});

describe('evaluateCondition, further cases from IAM’s documentation', () => {
  const CASES: [string, string[], string[] | undefined, boolean][] = [
    ['Null', ['TRUE'], undefined, true], // the value is a boolean; its text case does not matter
    ['Null', ['False'], ['x'], true],
    ['Null', ['true'], [], true], // no values is absent
    ['Null', ['false'], [], false],
    ['Null', ['yes'], undefined, false], // neither true nor false
    ['Null', ['yes'], ['x'], false],
    ['Null', ['true', 'false'], ['x'], true], // several values: any may match
    ['Null', ['true', 'false'], undefined, true],
    ['StringEquals', ['a'], [], false],
    ['StringEqualsIfExists', ['a'], [], true],
    ['StringNotEqualsIfExists', ['a'], undefined, true],
    ['StringNotEqualsIfExists', ['a'], ['a'], false],
    ['ForAnyValue:StringNotEquals', ['a'], undefined, false], // ForAnyValue over a missing key is false
    ['ForAnyValue:StringNotEquals', ['a'], [], false],
    ['ForAllValues:StringNotEquals', ['a'], undefined, true],
    ['ForAllValues:StringNotEquals', ['a'], ['b', 'c'], true],
    ['ForAllValues:StringNotEquals', ['a'], ['b', 'a'], false],
    ['StringEquals', ['a'], ['b', 'a'], true], // a multivalued key matches when any value does
    ['StringEquals', ['a'], ['a', 'b'], true],
    ['StringNotEquals', ['a'], ['b', 'a'], false], // ... so a negated operator needs none to match
    ['StringNotEquals', ['a'], ['b', 'c'], true],
    ['StringEqualsIgnoreCase', ['Team-A'], ['team-b'], false],
    ['StringNotEqualsIgnoreCase', ['A'], ['b'], true],
    ['StringLike', ['a*'], ['A-b'], false], // StringLike is case-sensitive
    ['StringLike', ['a*'], ['ab'], true],
    ['StringLike', ['*'], [''], true],
    ['StringNotLike', ['a*'], ['b'], true],
  ];
  it.each(CASES)('%s %j over %j is %s', (op, policyValues, requestValues, expected) => {
    expect(evaluateCondition(parseOperator(op), policyValues, requestValues)).toBe(expected);
  });
});

describe('globToRegExp: IAM wildcards and policy variables', () => {
  const CASES: [string, boolean, string, boolean][] = [
    ['a*b', false, 'ab', true],
    ['a*b', false, 'a\nxb', true], // * matches any run of characters, line breaks included
    ['a?b', false, 'a\nb', true],
    ['a?b', false, 'ab', false],
    ['${?}', false, '?', true], // ${?} is a literal ?
    ['${?}', false, 'x', false],
    ['${$}', false, '$', true],
    ['x${$}', false, 'x$', true],
    ['${*}y', false, '*y', true],
    ['${*}y', false, 'zy', false],
    ['${x}', false, '${x}', true], // not one of the three: literal text
    ['a.b', false, 'a.b', true],
    ['(a)', false, '(a)', true],
    ['a/b', false, 'a/b', true],
    ['abc', false, 'xabc', false], // anchored at both ends
    ['abc', false, 'abcx', false],
    ['ab', false, 'AB', false],
    ['ab', true, 'AB', true],
    ['a*', true, 'A-x', true],
  ];
  it.each(CASES)('%s (ignore case: %s) against %j is %s', (pattern, ignoreCase, text, expected) => {
    expect(globToRegExp(pattern, ignoreCase).test(text)).toBe(expected);
  });
});

describe('awsRequestOf: the condition keys STS knows', () => {
  const base = { iss: 'https://oidc.example.com/oz/' };
  it.each([
    ['aud, sub and the session name from run_id', { ...base, aud: 'sts.amazonaws.com', sub: 'u', run_id: 'run-1' }, [
      ['oidc.example.com/oz:aud', ['sts.amazonaws.com']],
      ['oidc.example.com/oz:sub', ['u']],
      ['sts:rolesessionname', ['Oz_Run_run-1']],
    ]],
    ['several audiences; amr as a string', { ...base, aud: ['a', 'b'], amr: 'pwd' }, [
      ['oidc.example.com/oz:aud', ['a', 'b']],
      ['oidc.example.com/oz:amr', ['pwd']],
    ]],
    ['amr as a list keeps its strings only', { ...base, amr: ['pwd', 1, 'mfa'] }, [['oidc.example.com/oz:amr', ['pwd', 'mfa']]]],
    ['no aud, a non-string sub, amr neither string nor list, an empty or non-string run_id', { ...base, aud: [], sub: 1, amr: 3, run_id: '' }, []],
    ['a numeric run_id', { ...base, run_id: 5 }, []],
    ['session tags: one key per tag, aws:TagKeys and sts:TransitiveTagKeys', {
      ...base,
      [AWS_TAGS_CLAIM]: { principal_tags: { Teams: ['team-a'], env: 'e1' }, transitive_tag_keys: ['Teams'] },
    }, [
      ['aws:requesttag/teams', ['team-a']],
      ['aws:requesttag/env', ['e1']],
      ['aws:tagkeys', ['Teams', 'env']],
      ['sts:transitivetagkeys', ['Teams']],
    ]],
  ])('%s', (_what, claims, context) => {
    const r = awsRequestOf(claims);
    expect([...r.context]).toEqual(context);
    expect(r.providerResource).toBe('oidc-provider/oidc.example.com/oz');
  });

  it('a token without tags asks for AssumeRoleWithWebIdentity only; with tags, TagSession too', () => {
    expect(awsRequestOf(base).actions).toEqual([AWRWI]);
    expect(awsRequestOf({ ...base, [AWS_TAGS_CLAIM]: { principal_tags: {} } }).actions).toEqual([AWRWI, 'sts:TagSession']);
  });

  it('a token without an issuer has an empty provider', () => {
    expect(awsRequestOf({ iss: 7, sub: 's' })).toEqual({ context: new Map([[':sub', ['s']]]), actions: [AWRWI], providerResource: 'oidc-provider/' });
  });
});

describe('sessionTagsOf', () => {
  it.each([
    ['no tags claim', {}, undefined],
    ['a tags claim that is not an object', { [AWS_TAGS_CLAIM]: 'x' }, undefined],
    ['no principal_tags', { [AWS_TAGS_CLAIM]: { transitive_tag_keys: ['a'] } }, undefined],
    ['principal_tags that is not an object', { [AWS_TAGS_CLAIM]: { principal_tags: ['a'] } }, undefined],
    ['each tag a list of its one value, or the value itself; other values dropped', { [AWS_TAGS_CLAIM]: { principal_tags: { a: ['1', '2'], b: 'x', c: 3, d: [4], e: [] } } }, { principalTags: { a: '1', b: 'x' } }],
    ['transitive keys as a string', { [AWS_TAGS_CLAIM]: { principal_tags: { a: 'x' }, transitive_tag_keys: 'a' } }, { principalTags: { a: 'x' }, transitiveTagKeys: ['a'] }],
    ['transitive keys that are not strings', { [AWS_TAGS_CLAIM]: { principal_tags: {}, transitive_tag_keys: 5 } }, { principalTags: {} }],
  ])('%s', (_what, claims, expected) => {
    expect(sessionTagsOf(claims)).toEqual(expected);
  });
});
