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
    expect(parseTrustPolicy(text, 'p')).toStrictEqual(expected);
  });

  it('a document given as JSON text is not URL-decoded: only one that starts with % is', () => {
    const doc = JSON.stringify({ Statement: [statement({ Sid: 'a%41' })] });
    expect(parseTrustPolicy(JSON.stringify({ Role: { AssumeRolePolicyDocument: doc } }), 'p').statements[0]?.Sid).toBe('a%41');
    expect(parseTrustPolicy(JSON.stringify({ Role: { AssumeRolePolicyDocument: encodeURIComponent(doc) } }), 'p').statements[0]?.Sid).toBe('a%41');
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
    expect(parseOperator(name)).toStrictEqual(expected);
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
    expect(sessionTagsOf(claims)).toStrictEqual(expected);
  });
});

describe('evaluateAwsTrustPolicy: the principal', () => {
  const CASES: [string, unknown, boolean][] = [
    ['"*"', '*', true],
    ['Federated "*"', { Federated: '*' }, true],
    ['the provider', { Federated: PROVIDER }, true],
    ['the provider among others', { Federated: ['arn:aws:iam::123456789012:oidc-provider/other.example.com', PROVIDER] }, true],
    ['the provider with the host in capitals (host names ignore case)', { Federated: `arn:aws:iam::123456789012:oidc-provider/OIDC.Example.COM/oz` }, true],
    ['the provider with the path in capitals (paths do not)', { Federated: `arn:aws:iam::123456789012:oidc-provider/oidc.example.com/OZ` }, false],
    ['another path', { Federated: `arn:aws:iam::123456789012:oidc-provider/oidc.example.com/ozz` }, false],
    ['the host without the path', { Federated: `arn:aws:iam::123456789012:oidc-provider/oidc.example.com` }, false],
    ['another partition', { Federated: `arn:aws-cn:iam::123456789012:oidc-provider/${HP}` }, true],
    ['a service, not IAM', { Federated: `arn:aws:sts::123456789012:oidc-provider/${HP}` }, false],
    ['not an ARN', { Federated: `urn:aws:iam::123456789012:oidc-provider/${HP}` }, false],
    ['too few parts', { Federated: `arn:aws:iam::123456789012` }, false],
    ['a non-string entry', { Federated: [7] }, false],
    ['no Federated', { AWS: PROVIDER }, false],
    ['Federated not a string nor a list', { Federated: { a: PROVIDER } }, false],
    ['a principal that is not "*" nor an object', 'arn:aws:iam::123456789012:root', false],
  ];
  it.each(CASES)('%s: %s', (_what, Principal, ok) => {
    const v = explain({ Statement: [statement({ Principal })] });
    expect(named(v, 'principal')).toEqual([
      { group: 'statement #1: Allow', name: 'principal', expected: `arn:aws:iam::<account>:oidc-provider/${HP}`, actual: typeof Principal === 'string' ? Principal : JSON.stringify(Principal), ok },
    ]);
    expect(v.accepted).toBe(ok);
  });

  it('with the role known, the expected provider is in its account and partition, and another account is refused', () => {
    const role = (arn: string, Principal: unknown) => explain({ Role: { Arn: arn, AssumeRolePolicyDocument: { Statement: [statement({ Principal })] } } });
    const cn = role('arn:aws-cn:iam::123456789012:role/r', { Federated: `arn:aws-cn:iam::123456789012:oidc-provider/${HP}` });
    expect(named(cn, 'principal')[0]).toMatchObject({ expected: `arn:aws-cn:iam::123456789012:oidc-provider/${HP}`, ok: true });
    expect(cn.outcome).toEqual({ role_arn: 'arn:aws-cn:iam::123456789012:role/r', actions: [AWRWI] });
    expect(named(role('arn:aws:iam::999999999999:role/r', { Federated: PROVIDER }), 'principal')[0]?.ok).toBe(false);
    expect(named(role('arn:aws:iam::999999999999:role/r', { Federated: '*' }), 'principal')[0]?.ok).toBe(true);
  });

  it.each([
    ['excludes another provider: applies', { Federated: 'arn:aws:iam::123456789012:oidc-provider/other.example.com' }, true],
    ['excludes this provider: does not apply', { Federated: PROVIDER }, false],
    ['excludes everyone: does not apply', '*', false],
  ])('NotPrincipal that %s', (_what, NotPrincipal, ok) => {
    const v = explain({ Statement: [{ Effect: 'Allow', NotPrincipal, Action: AWRWI }] });
    expect(named(v, 'principal')[0]).toMatchObject({ actual: `NotPrincipal ${typeof NotPrincipal === 'string' ? NotPrincipal : JSON.stringify(NotPrincipal)}`, ok });
    expect(v.accepted).toBe(ok);
  });
});

describe('evaluateAwsTrustPolicy: actions', () => {
  it.each([
    [{ Action: AWRWI }, AWRWI, true],
    [{ Action: ['sts:AssumeRole', 'sts:AssumeRoleWith*'] }, '["sts:AssumeRole","sts:AssumeRoleWith*"]', true],
    [{ Action: 'sts:assumerolewithwebidentity' }, 'sts:assumerolewithwebidentity', true], // action names ignore case
    [{ Action: 'sts:AssumeRoleWithWeb?dentity' }, 'sts:AssumeRoleWithWeb?dentity', true],
    [{ Action: 'sts:AssumeRole' }, 'sts:AssumeRole', false],
    [{ Action: undefined, NotAction: 'iam:*' }, 'NotAction iam:*', true],
    [{ Action: undefined, NotAction: ['iam:*', 'sts:*'] }, 'NotAction ["iam:*","sts:*"]', false],
  ])('%j', (fields, actual, ok) => {
    const v = explain({ Statement: [statement(fields)] });
    expect(named(v, `action ${AWRWI}`)).toEqual([{ group: 'statement #1: Allow', name: `action ${AWRWI}`, expected: 'in Action (or not in NotAction)', actual, ok }]);
    expect(named(v, `${AWRWI} allowed`)).toEqual([
      { name: `${AWRWI} allowed`, expected: ALLOWED, actual: ok ? 'allowed by statement #1' : 'no Allow statement matches (implicit deny)', ok },
    ]);
  });
});

describe('evaluateAwsTrustPolicy: Allow and Deny statements', () => {
  const allow = statement();
  const deny = statement({ Effect: 'Deny' });
  const otherAllow = statement({ Condition: { StringEquals: { [`${HP}:sub`]: 'someone-else' } } });
  const otherDeny = statement({ Effect: 'Deny', Condition: { StringEquals: { [`${HP}:sub`]: 'someone-else' } } });
  it.each([
    ['one Allow', [allow], 'allowed by statement #1', true],
    ['an Allow after one that does not match', [otherAllow, allow], 'allowed by statement #2', true],
    ['a Deny first', [deny, allow], 'denied by statement #1', false],
    ['a Deny alone', [deny], 'denied by statement #1', false],
    ['a Deny that does not match', [otherDeny, allow], 'allowed by statement #2', true],
    ['a Deny second, after a Deny that does not match', [otherDeny, deny, allow], 'denied by statement #2', false],
    ['no statement that matches', [otherAllow], 'no Allow statement matches (implicit deny)', false],
  ])('%s', (_what, Statement, actual, ok) => {
    const v = explain({ Statement });
    expect(named(v, `${AWRWI} allowed`)).toEqual([{ name: `${AWRWI} allowed`, expected: ALLOWED, actual, ok }]);
    expect(v.accepted).toBe(ok);
  });

  it('labels each statement with its number, Sid and Effect', () => {
    const v = explain({ Statement: [statement({ Sid: 'First' }), statement({ Effect: 'Deny', Sid: '', Principal: { Federated: 'arn:aws:iam::1:oidc-provider/x' } })] });
    expect(v.checks.filter((c) => c.name === 'principal').map((c) => c.group)).toEqual(['statement #1 (First): Allow', 'statement #2: Deny']);
    expect(v.accepted).toBe(true);
  });
});

describe('evaluateAwsTrustPolicy: the token', () => {
  const ok = { Statement: [statement()] };
  it.each([
    ['https://oidc.example.com/oz', true],
    ['HTTPS://oidc.example.com/oz', true],
    ['https:///oz', false],
    ['http://oidc.example.com/oz', false],
    ['x https://oidc.example.com/oz', false],
  ])('issuer %s', (iss, good) => {
    const v = explain({ Statement: [statement({ Principal: '*' })] }, signToken({ iss }));
    expect(named(v, 'issuer (iss)')).toEqual([{ name: 'issuer (iss)', expected: "an https URL (the IAM OIDC provider's URL)", actual: iss, ok: good }]);
    expect(v.accepted).toBe(good);
  });

  it('an issuer that is not a string', () => {
    const v = explain({ Statement: [statement({ Principal: '*' })] }, signToken({ iss: 5 }));
    expect(named(v, 'issuer (iss)')[0]).toMatchObject({ actual: '(absent)', ok: false });
  });

  const EXPECTED_AUD = 'a client ID of the IAM OIDC provider (oz setup registers sts.amazonaws.com)';
  const NOTE = 'check that the provider lists it: aws iam get-open-id-connect-provider --open-id-connect-provider-arn ARN';
  it.each([
    ['sts.amazonaws.com', { name: 'audience (aud)', expected: EXPECTED_AUD, actual: 'sts.amazonaws.com', ok: true }],
    [['sts.amazonaws.com'], { name: 'audience (aud)', expected: EXPECTED_AUD, actual: 'sts.amazonaws.com', ok: true }],
    ['custom', { name: 'audience (aud)', expected: EXPECTED_AUD, actual: 'custom', ok: true, note: NOTE }],
    [['a', 'sts.amazonaws.com'], { name: 'audience (aud)', expected: EXPECTED_AUD, actual: '["a","sts.amazonaws.com"]', ok: true }],
    [['a', 'b'], { name: 'audience (aud)', expected: EXPECTED_AUD, actual: '["a","b"]', ok: true, note: NOTE }],
    [[], { name: 'audience (aud)', expected: EXPECTED_AUD, actual: '[]', ok: false }],
    [undefined, { name: 'audience (aud)', expected: EXPECTED_AUD, actual: '[]', ok: false }],
  ])('aud %j', (aud, expected) => {
    const v = explain(ok, signToken({ aud }));
    expect(named(v, 'audience (aud)')).toEqual([expected]);
    expect(v.accepted).toBe(expected.ok);
  });

  it.each([
    [20_000, true],
    [20_001, false],
  ])('a token of %i characters (STS takes at most 20000)', (length, good) => {
    const v = explain(ok, signToken({}), 'x'.repeat(length));
    expect(named(v, 'token size')).toEqual([{ name: 'token size', expected: 'at most 20000 characters', actual: String(length), ok: good }]);
    expect(v.accepted).toBe(good);
  });

  it('a failed check inside a statement that does not decide does not refuse the token', () => {
    const v = explain({ Statement: [statement({ Principal: { Federated: 'arn:aws:iam::1:oidc-provider/x' } }), statement()] });
    expect(v.accepted).toBe(true);
    expect(v.outcome).toEqual({ actions: [AWRWI] });
  });
});

describe('evaluateAwsTrustPolicy: conditions and their hints', () => {
  const tagged = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-a'] } } });
  const G = 'statement #1: Allow';
  const TAG_HINT = 'the token carries no such session tag: the platform adds tags with grant-run --aws-session-tags (OZ_AWS_SESSION_TAGS)';
  const OTHER = `the key names another provider; this token's keys start with ${HP}:`;
  it.each([
    ['StringEquals', 'aws:RequestTag/env', 'x', '(absent)', TAG_HINT],
    ['ForAnyValue:StringEquals', 'aws:TagKeys', 'x', '(absent)', TAG_HINT],
    ['StringEquals', 'token.actions.githubusercontent.com:sub', 'x', '(absent)', OTHER],
    ['StringEquals', 'OIDC.example.com/oz:amr', 'x', '(absent)', undefined], // this provider's key, absent from the token
    ['StringEquals', 'aws:PrincipalTag/x', 'x', '(absent)', undefined],
    ['StringEquals', 'sts:ExternalId', 'x', '(absent)', undefined],
    ['StringEquals', 'nocolon', 'x', '(absent)', undefined],
    ['StringEquals', `${HP}:sub`, 'someone', 'user-42', undefined], // present but different: no hint
    ['StringEquals', `${HP}:sub`, ['a', 'b'], 'user-42', undefined],
  ])('%s %s', (op, key, value, actual, note) => {
    const v = explain({ Statement: [statement({ Condition: { [op]: { [key]: value } } })] });
    const expected = { group: G, name: `${op} ${key}`, expected: Array.isArray(value) ? JSON.stringify(value) : value, actual, ok: false, ...(note === undefined ? {} : { note }) };
    expect(named(v, `${op} ${key}`)).toEqual([expected]);
    expect(v.accepted).toBe(false);
  });

  it('shows a multivalued key as a list, and no note when the condition holds', () => {
    const doc = { Statement: [statement({ Action: [AWRWI, 'sts:TagSession'], Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['teams', 'env'] }, Null: { 'aws:RequestTag/env': true } } })] };
    const two = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-a'], env: ['e'] } } });
    expect(named(explain(doc, two), 'ForAllValues:StringEquals aws:TagKeys')).toEqual([
      { group: G, name: 'ForAllValues:StringEquals aws:TagKeys', expected: '["teams","env"]', actual: '["teams","env"]', ok: true },
    ]);
    const v = explain(doc, tagged);
    expect(named(v, 'Null aws:RequestTag/env')).toEqual([{ group: G, name: 'Null aws:RequestTag/env', expected: 'true', actual: '(absent)', ok: true }]);
    expect(v.accepted).toBe(true);
    expect(v.outcome).toEqual({ actions: [AWRWI, 'sts:TagSession'], session_tags: { teams: 'team-a' } });
  });

  it('with tags, TagSession must be allowed too; the note names it only when no Allow matches', () => {
    const allowed = explain({ Statement: [statement({ Action: 'sts:*' })] }, tagged);
    expect(named(allowed, 'sts:TagSession allowed')).toEqual([{ name: 'sts:TagSession allowed', expected: ALLOWED, actual: 'allowed by statement #1', ok: true }]);
    const denied = explain({ Statement: [statement({ Action: 'sts:*' }), statement({ Effect: 'Deny', Action: 'sts:TagSession' })] }, tagged);
    expect(named(denied, 'sts:TagSession allowed')).toEqual([{ name: 'sts:TagSession allowed', expected: ALLOWED, actual: 'denied by statement #2', ok: false }]);
    expect(named(denied, `${AWRWI} allowed`)[0]?.ok).toBe(true);
    expect(denied.accepted).toBe(false);
    const missing = explain({ Statement: [statement()] }, tagged);
    expect(named(missing, 'sts:TagSession allowed')).toEqual([
      {
        name: 'sts:TagSession allowed',
        expected: ALLOWED,
        actual: 'no Allow statement matches (implicit deny)',
        ok: false,
        note: `the token carries session tags (${AWS_TAGS_CLAIM}), so the trust policy must also allow sts:TagSession`,
      },
    ]);
    // The note is for TagSession; AssumeRoleWithWebIdentity's refusal has none.
    const none = explain({ Statement: [statement({ Action: 'iam:x' })] });
    expect(named(none, `${AWRWI} allowed`)[0]?.note).toBeUndefined();
  });

  it('numbers and booleans in a condition compare as their text', () => {
    const v = explain({ Statement: [statement({ Condition: { StringEquals: { [`${HP}:sub`]: [42, true, 'user-42'] } } })] });
    expect(named(v, `StringEquals ${HP}:sub`)[0]).toMatchObject({ expected: '["42","true","user-42"]', ok: true });
  });

  it('the session name STS will set is a condition key', () => {
    const cond = (name: string) => explain({ Statement: [statement({ Condition: { StringEquals: { 'sts:RoleSessionName': name } } })] }, signToken({ run_id: 'run-9' })).accepted;
    expect(cond('Oz_Run_run-9')).toBe(true);
    expect(cond('Oz_Run_run-1')).toBe(false);
  });
});

describe('evaluateAwsTrustPolicy: a role trusts providers of its own partition only', () => {
  it.each([
    ['arn:aws:iam::123456789012:role/r', `arn:aws:iam::123456789012:oidc-provider/${HP}`, true],
    ['arn:aws:iam::123456789012:role/r', `arn:aws-cn:iam::123456789012:oidc-provider/${HP}`, false],
    ['arn:aws-us-gov:iam::123456789012:role/r', `arn:aws-us-gov:iam::123456789012:oidc-provider/${HP}`, true],
    ['arn:aws-us-gov:iam::123456789012:role/r', `arn:aws:iam::123456789012:oidc-provider/${HP}`, false],
  ])('role %s, principal %s', (Arn, federated, ok) => {
    const v = explain({ Role: { Arn, AssumeRolePolicyDocument: { Statement: [statement({ Principal: { Federated: federated } })] } } });
    expect(named(v, 'principal')[0]?.ok).toBe(ok);
    expect(v.accepted).toBe(ok);
  });
});

describe('evaluateAwsTrustPolicy: providers named by host alone', () => {
  const token = signToken({ iss: 'https://oidc.example.com' });
  it.each([
    ['oidc.example.com', true],
    ['OIDC.EXAMPLE.COM', true], // host names ignore case
    ['other.example.com', false],
    ['oidc.example.org', false],
    ['oidc.example.com/oz', false],
  ])('principal oidc-provider/%s', (resource, ok) => {
    const v = explain({ Statement: [statement({ Principal: { Federated: `arn:aws:iam::123456789012:oidc-provider/${resource}` } })] }, token);
    expect(named(v, 'principal')[0]).toMatchObject({ expected: 'arn:aws:iam::<account>:oidc-provider/oidc.example.com', ok });
  });

  it.each([
    [`arn:aws:iam::123456789012:oidc-provider/other.example.com/oz`, false], // the same path on another host
    [`arn:aws:iam::123456789012:oidc-provider/oidc.example.com/oz/`, false],
  ])('principal %s for issuer https://oidc.example.com/oz', (federated, ok) => {
    expect(named(explain({ Statement: [statement({ Principal: { Federated: federated } })] }), 'principal')[0]?.ok).toBe(ok);
  });

  it('a host name that differs by more than letter case is another host (ß is not ss)', () => {
    const strasse = signToken({ iss: 'https://straße.example/oz' });
    const v = explain({ Statement: [statement({ Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/STRASSE.example/oz' } })] }, strasse);
    expect(named(v, 'principal')[0]?.ok).toBe(false);
    const bare = explain({ Statement: [statement({ Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/STRASSE.example' } })] }, signToken({ iss: 'https://straße.example' }));
    expect(named(bare, 'principal')[0]?.ok).toBe(false);
  });
});

describe('further verdict details', () => {
  it('? in StringLike is one character, even outside the Basic Multilingual Plane', () => {
    expect(globToRegExp('a?b', false).test('a😀b')).toBe(true);
    expect(evaluateCondition(parseOperator('StringLike'), ['a?b'], ['a😀b'])).toBe(true);
  });

  it('TagSession denied with no Allow statement for it: the note says it must also be allowed', () => {
    const tagged = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-a'] } } });
    const v = explain({ Statement: [statement({ Effect: 'Deny', Action: 'sts:TagSession' })] }, tagged);
    expect(named(v, 'sts:TagSession allowed')).toEqual([
      {
        name: 'sts:TagSession allowed',
        expected: ALLOWED,
        actual: 'denied by statement #1',
        ok: false,
        note: `the token carries session tags (${AWS_TAGS_CLAIM}), so the trust policy must also allow sts:TagSession`,
      },
    ]);
  });
});

describe('constants STS defines', () => {
  it('session tags travel in the claim https://aws.amazon.com/tags', () => {
    const v = explain({ Statement: [statement({ Action: 'sts:*' })] }, signToken({ 'https://aws.amazon.com/tags': { principal_tags: { teams: ['team-a'] } } }));
    expect(v.relyingParty).toBe('aws');
    expect(v.outcome).toEqual({ actions: [AWRWI, 'sts:TagSession'], session_tags: { teams: 'team-a' } });
  });

  it('the algorithms STS takes', () => {
    expect(named(explain({ Statement: [statement()] }), 'signature algorithm (alg)')[0]?.expected).toBe('RS256 or RS384 or RS512 or ES256 or ES384 or ES512');
  });
});

describe('remaining edge cases', () => {
  it.each([
    ['a**b', 'axyb', true], // consecutive wildcards are each a wildcard
    ['a?*b', 'axyb', true],
    ['a*?b', 'ab', false],
  ])('StringLike %s against %s is %s', (pattern, text, expected) => {
    expect(evaluateCondition(parseOperator('StringLike'), [pattern], [text])).toBe(expected);
  });

  it('a condition that fails on a key the token has gets no hint', () => {
    const tagged = signToken({ [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['team-b'] } } });
    const v = explain({ Statement: [statement({ Action: 'sts:*', Condition: { StringEquals: { 'aws:RequestTag/teams': 'team-a' } } })] }, tagged);
    expect(named(v, 'StringEquals aws:RequestTag/teams')).toEqual([
      { group: 'statement #1: Allow', name: 'StringEquals aws:RequestTag/teams', expected: 'team-a', actual: 'team-b', ok: false },
    ]);
  });

  it('a null principal matches nothing', () => {
    const v = explain({ Statement: [statement({ Principal: null })] });
    expect(named(v, 'principal')[0]).toMatchObject({ actual: 'null', ok: false });
    expect(v.accepted).toBe(false);
  });

  it('a document that is not URL-encoding is refused with its own JSON error', () => {
    expect(() => parseTrustPolicy(JSON.stringify({ Role: { AssumeRolePolicyDocument: '%E0%A4%A' } }), 'p')).toThrow(/^p is not JSON: (?!.*undefined)/);
  });
});
