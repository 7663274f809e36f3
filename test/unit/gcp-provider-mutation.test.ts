import { describe, expect, it } from 'vitest';
import { evaluateCel, evaluateGcpProvider, parseGcpProvider, type GcpProvider } from '../../src/cloud/gcp-provider.js';
import { OzError } from '../../src/core/errors.js';
import { ISSUER, NOW, T, jwksJson, signToken, type Signed } from '../helpers/cloud-tokens.js';

const NAME = 'projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
const POOL = 'projects/123456789012/locations/global/workloadIdentityPools/oz-pool';
const AUD = `https://iam.googleapis.com/${NAME}`;
const SIG = "signature (against the provider's jwksJson)";

function provider(over: Partial<GcpProvider> = {}): GcpProvider {
  return {
    name: NAME,
    issuerUri: ISSUER,
    allowedAudiences: [],
    attributeMapping: { 'google.subject': 'assertion.sub' },
    ...over,
  };
}

const evaluate = (p: GcpProvider, token: Signed = signToken({ aud: AUD })) => evaluateGcpProvider(p, token.decoded, { now: NOW });
const named = (p: GcpProvider, name: string, token?: Signed) => evaluate(p, token).checks.find((c) => c.name === name);
const iso = (s: number) => new Date(s * 1000).toISOString();

describe('parseGcpProvider refuses what is not an OIDC workload identity pool provider', () => {
  const prefix = 'provider.json is not a workload identity pool provider: ';
  const oidc = { issuerUri: ISSUER };
  it.each([
    ['a list', [], 'expected the JSON object that `gcloud iam workload-identity-pools providers describe --format=json` prints'],
    ['a string', 'x', 'expected the JSON object that `gcloud iam workload-identity-pools providers describe --format=json` prints'],
    ['no oidc section', { name: NAME }, 'it has no oidc section'],
    ['a SAML provider', { name: NAME, saml: {} }, 'it is a SAML provider; oz tokens need an OIDC provider'],
    ['an empty issuerUri', { name: NAME, oidc: { issuerUri: '' } }, 'oidc.issuerUri is missing'],
    ['an issuerUri that is not a string', { name: NAME, oidc: { issuerUri: 5 } }, 'oidc.issuerUri is missing'],
    ['allowedAudiences that is a string', { name: NAME, oidc: { ...oidc, allowedAudiences: 'a' } }, 'oidc.allowedAudiences must be a list of strings'],
    ['allowedAudiences with a number', { name: NAME, oidc: { ...oidc, allowedAudiences: ['a', 1] } }, 'oidc.allowedAudiences must be a list of strings'],
    ['attributeMapping that is a list', { name: NAME, oidc, attributeMapping: ['assertion.sub'] }, 'attributeMapping must map attribute names to CEL expressions'],
    ['attributeMapping to a number', { name: NAME, oidc, attributeMapping: { 'google.subject': 1 } }, 'attributeMapping must map attribute names to CEL expressions'],
    ['attributeCondition that is not a string', { name: NAME, oidc, attributeCondition: true }, 'attributeCondition must be a CEL expression'],
    ['a name that is not a string', { name: 5, oidc }, 'name must be projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER'],
    ['a name that is not a provider resource', { name: `${POOL}/providers/a/b`, oidc }, 'name must be projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER'],
    ['a name that is a list holding a provider resource', { name: [NAME], oidc }, 'name must be projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER'],
    ['a name with text before the resource', { name: `x/${NAME}`, oidc }, 'name must be projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER'],
    ['neither a name nor allowed audiences', { oidc }, "with no oidc.allowedAudiences the provider's name is needed to know its audience"],
    ['no name and an empty audience list', { oidc: { ...oidc, allowedAudiences: [] } }, "with no oidc.allowedAudiences the provider's name is needed to know its audience"],
  ])('%s', (_what, doc, why) => {
    let error: unknown;
    try {
      parseGcpProvider(JSON.stringify(doc), 'provider.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OzError);
    expect((error as OzError).code).toBe('usage');
    expect((error as OzError).message).toBe(prefix + why);
  });
});

describe('parseGcpProvider keeps the fields STS uses, and only well-formed ones', () => {
  it.each([
    [
      'the fields gcloud prints',
      { name: NAME, state: 'ACTIVE', disabled: false, attributeCondition: 'true', attributeMapping: { 'google.subject': 'assertion.sub' }, oidc: { issuerUri: ISSUER, allowedAudiences: ['a'], jwksJson: '{"keys":[]}' } },
      { name: NAME, state: 'ACTIVE', disabled: false, attributeCondition: 'true', attributeMapping: { 'google.subject': 'assertion.sub' }, issuerUri: ISSUER, allowedAudiences: ['a'], jwksJson: '{"keys":[]}' },
    ],
    ['no name, with allowed audiences', { oidc: { issuerUri: ISSUER, allowedAudiences: ['a'] } }, { issuerUri: ISSUER, allowedAudiences: ['a'], attributeMapping: {} }],
    ['a disabled provider', { name: NAME, disabled: true, oidc: { issuerUri: ISSUER } }, { name: NAME, disabled: true, issuerUri: ISSUER, allowedAudiences: [], attributeMapping: {} }],
    [
      'empty or mistyped optional fields are dropped',
      { name: NAME, state: 5, disabled: 'yes', attributeCondition: '', oidc: { issuerUri: ISSUER, jwksJson: '' } },
      { name: NAME, issuerUri: ISSUER, allowedAudiences: [], attributeMapping: {} },
    ],
    ['a jwksJson that is not a string is dropped', { name: NAME, oidc: { issuerUri: ISSUER, jwksJson: { keys: [] } } }, { name: NAME, issuerUri: ISSUER, allowedAudiences: [], attributeMapping: {} }],
  ])('%s', (_what, doc, parsed) => {
    expect(parseGcpProvider(JSON.stringify(doc), 'provider.json')).toStrictEqual(parsed);
  });
});

describe('CEL values come back as JSON-like ones', () => {
  it.each([
    ['size(assertion.teams)', 2],
    ['1 + 2', 3],
    ["{'a': 1, 'b': [2, 'c']}", { a: 1, b: [2, 'c'] }],
    ['[1, 2]', [1, 2]],
    // extract(): the text around {name} is matched literally, whitespace included.
    ["'hello world-42'.extract('hello world-{id}')", '42'],
    ["'a b c'.extract('{x} c')", 'a b'],
    ["'org/repo:path'.extract('{org}/')", 'org'],
    ["'user-42'.extract('user-{id}/x')", ''],
    ["'user-42'.extract('user-42')", ''],
    ["'user-42'.extract('')", ''],
  ])('%s', (expression, value) => {
    expect(evaluateCel(expression, { assertion: { teams: ['a', 'b'] } })).toStrictEqual({ ok: true, value });
  });
});

describe('evaluateGcpProvider: every check, exactly', () => {
  it('an accepted token, with the default audience', () => {
    const v = evaluate(provider({ attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.run_id': 'assertion.run_id' } }));
    expect(v).toStrictEqual({
      relyingParty: 'gcp',
      accepted: true,
      checks: [
        { name: 'issuer (iss)', expected: ISSUER, actual: ISSUER, ok: true },
        {
          name: 'audience (aud)',
          expected: `one of https://iam.googleapis.com/${NAME}, //iam.googleapis.com/${NAME}`,
          actual: AUD,
          ok: true,
          note: 'the provider has no allowed audiences, so only its own resource name is accepted',
        },
        { name: 'signature algorithm (alg)', expected: 'RS256 or ES256', actual: 'RS256', ok: true },
        { name: 'key ID (kid)', expected: "present, naming a key in the issuer's JWKS", actual: 'kid-RS256', ok: true },
        { name: 'not expired (exp)', expected: `after ${iso(T)}`, actual: iso(T + 3600), ok: true },
        { name: 'not in the future (nbf)', expected: `at or before ${iso(T)}`, actual: iso(T - 30), ok: true },
        { name: 'not in the future (iat)', expected: `at or before ${iso(T)}`, actual: iso(T - 30), ok: true },
        { name: 'lifetime (exp - iat)', expected: 'under 48 h', actual: '3630 s', ok: true },
        { name: 'attribute mapping google.subject = assertion.sub', expected: 'a string of at most 127 bytes', actual: 'user-42 (7 bytes)', ok: true },
        { name: 'attribute mapping attribute.run_id = assertion.run_id', expected: 'evaluates', actual: 'run-1', ok: true },
      ],
      outcome: {
        attributes: { 'google.subject': 'user-42', 'attribute.run_id': 'run-1' },
        principal: `principal://iam.googleapis.com/${POOL}/subject/user-42`,
      },
    });
  });

  it.each([
    [{ state: 'ACTIVE' }, { actual: 'ACTIVE', ok: true }],
    [{ state: 'DELETED' }, { actual: 'DELETED', ok: false }],
    [{ state: 'ACTIVE', disabled: true }, { actual: 'ACTIVE, disabled', ok: false }],
    [{ state: 'ACTIVE', disabled: false }, { actual: 'ACTIVE', ok: true }],
    [{ disabled: false }, { actual: '(unknown)', ok: true }],
    [{ disabled: true }, { actual: '(unknown), disabled', ok: false }],
  ])('provider state %j', (over, result) => {
    expect(evaluate(provider(over)).checks[0]).toStrictEqual({ name: 'provider state', expected: 'ACTIVE, not disabled', ...result });
  });

  it('without state or disabled, there is no provider state check', () => {
    expect(evaluate(provider()).checks[0]?.name).toBe('issuer (iss)');
  });

  const slashNote = "the provider's issuer URI must equal iss exactly, trailing slash included";
  it.each([
    ['exactly the issuer URI', ISSUER, ISSUER, { actual: ISSUER, ok: true }],
    ['with a trailing slash', ISSUER, `${ISSUER}/`, { actual: `${ISSUER}/`, ok: false, note: slashNote }],
    ['with two trailing slashes', ISSUER, `${ISSUER}//`, { actual: `${ISSUER}//`, ok: false, note: slashNote }],
    ['without the provider URI\'s two trailing slashes', `${ISSUER}//`, ISSUER, { actual: ISSUER, ok: false, note: slashNote }],
    ['another issuer', ISSUER, 'https://other.example.com', { actual: 'https://other.example.com', ok: false }],
    ['a number', ISSUER, 5, { actual: '5', ok: false }],
  ])('iss %s', (_what, issuerUri, iss, result) => {
    expect(named(provider({ issuerUri }), 'issuer (iss)', signToken({ aud: AUD, iss }))).toStrictEqual({ name: 'issuer (iss)', expected: issuerUri, ...result });
  });

  it.each([
    ['one allowed audience', ['https://a.example'], 'https://a.example', { expected: 'https://a.example', actual: 'https://a.example', ok: true }],
    ['two allowed audiences', ['a', 'b'], 'b', { expected: 'one of a, b', actual: 'b', ok: true }],
    ['an aud list of which one is allowed', ['a'], ['x', 'a'], { expected: 'a', actual: '["x","a"]', ok: true }],
    ['an aud that is not allowed', ['a'], 'x', { expected: 'a', actual: 'x', ok: false }],
  ])('audience: %s', (_what, allowedAudiences, aud, result) => {
    expect(named(provider({ allowedAudiences }), 'audience (aud)', signToken({ aud }))).toStrictEqual({ name: 'audience (aud)', ...result });
  });

  it.each([
    ['iat missing', { iat: undefined }, 'unknown (exp or iat missing)', false],
    ['exp missing', { exp: undefined }, 'unknown (exp or iat missing)', false],
    ['47 h', { iat: T - 10, exp: T - 10 + 47 * 3600 }, `${47 * 3600} s`, true],
    ['48 h', { iat: T - 10, exp: T - 10 + 48 * 3600 }, `${48 * 3600} s`, false],
  ])('lifetime with %s', (_what, claims, actual, ok) => {
    expect(named(provider(), 'lifetime (exp - iat)', signToken({ aud: AUD, ...claims }))).toStrictEqual({ name: 'lifetime (exp - iat)', expected: 'under 48 h', actual, ok });
  });

  it('a provider with no attribute condition makes no condition check', () => {
    const v = evaluate(provider());
    expect(v.accepted).toBe(true);
    expect(v.checks.map((c) => c.name)).not.toContain('attribute condition');
  });

  it.each([
    ["size(attribute) == 1 && attribute.run_id == 'run-1'", true],
    ["google.subject == 'user-42' && google.groups == ['team-a']", true],
    ['size(google) == 2', true],
  ])('the condition %s sees google.* and attribute.* only under their own names', (attributeCondition, value) => {
    const p = provider({
      attributeCondition,
      attributeMapping: { 'google.subject': 'assertion.sub', 'google.groups': 'assertion.teams', 'attribute.run_id': 'assertion.run_id', other: 'assertion.environment' },
    });
    expect(named(p, 'attribute condition')).toStrictEqual({ name: 'attribute condition', expected: `${attributeCondition} is true`, actual: String(value), ok: value });
  });

  it('a condition that fails to evaluate refuses the token', () => {
    expect(named(provider({ attributeCondition: 'assertion.nope' }), 'attribute condition')).toStrictEqual({
      name: 'attribute condition',
      expected: 'assertion.nope is true',
      actual: expect.stringMatching(/^error: ./),
      ok: false,
      note: 'an attribute condition that fails to evaluate refuses the token',
    });
  });

  it('a provider that does not map google.subject', () => {
    const v = evaluate(provider({ attributeMapping: { 'attribute.sub': 'assertion.sub' } }));
    expect(v.checks.slice(-2)).toStrictEqual([
      { name: 'attribute mapping google.subject', expected: 'a mapping for google.subject', actual: '(none)', ok: false, note: 'every provider must map google.subject' },
      { name: 'attribute mapping attribute.sub = assertion.sub', expected: 'evaluates', actual: 'user-42', ok: true },
    ]);
    expect(v.outcome).toStrictEqual({ attributes: { 'attribute.sub': 'user-42' } });
  });

  it('a mapping that fails to evaluate', () => {
    const v = evaluate(provider({ attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.email': 'assertion.email' } }));
    expect(v.checks.at(-1)).toStrictEqual({
      name: 'attribute mapping attribute.email',
      expected: 'assertion.email evaluates',
      actual: expect.stringMatching(/^error: ./),
      ok: false,
      note: 'a mapping that fails to evaluate refuses the token; guard optional claims with has(assertion.X)',
    });
  });

  it.each([
    ['a list', 'assertion.teams', {}, '["team-a"]', false],
    ['128 bytes of UTF-8', 'assertion.sub', { sub: 'é'.repeat(64) }, `${'é'.repeat(64)} (128 bytes)`, false],
    ['127 bytes', 'assertion.sub', { sub: 'u'.repeat(127) }, `${'u'.repeat(127)} (127 bytes)`, true],
  ])('google.subject as %s', (_what, expression, claims, actual, ok) => {
    const name = `attribute mapping google.subject = ${expression}`;
    const p = provider({ attributeMapping: { 'google.subject': expression } });
    expect(named(p, name, signToken({ aud: AUD, ...claims }))).toStrictEqual({ name, expected: 'a string of at most 127 bytes', actual, ok });
  });

  it('a google.subject that is not a string names no principal', () => {
    expect(evaluate(provider({ attributeMapping: { 'google.subject': 'assertion.teams' } })).outcome).toStrictEqual({ attributes: { 'google.subject': ['team-a'] } });
  });

  it.each([
    ['the pool of the provider', NAME, `principal://iam.googleapis.com/${POOL}/subject/user-42`],
    [
      'a pool named providers',
      'projects/1/locations/global/workloadIdentityPools/providers/providers/p',
      'principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/providers/subject/user-42',
    ],
    ['no name: unknown', undefined, undefined],
  ])('the principal: %s', (_what, name, principal) => {
    const p: GcpProvider = { issuerUri: ISSUER, allowedAudiences: [AUD], attributeMapping: { 'google.subject': 'assertion.sub' }, ...(name === undefined ? {} : { name }) };
    expect(evaluate(p).outcome).toStrictEqual({ attributes: { 'google.subject': 'user-42' }, principal });
  });
});

describe('the signature, against the provider\'s jwksJson', () => {
  const withKeys = (jwks: string) => provider({ jwksJson: jwks });
  it.each([
    ['RS256', 'kid-RS256'],
    ['ES256', 'kid-ES256'],
  ] as const)('%s with the matching key is valid', (alg, kid) => {
    expect(named(withKeys(jwksJson()), SIG, signToken({ aud: AUD }, { alg }))).toStrictEqual({ name: SIG, expected: `valid, key ${kid}`, actual: 'valid', ok: true });
  });

  it('a signature over other claims is invalid', () => {
    const good = signToken({ aud: AUD });
    const tampered = signToken({ aud: AUD, teams: ['x'] });
    const forged = { text: '', decoded: { ...tampered.decoded, signature: good.decoded.signature } };
    expect(named(withKeys(jwksJson()), SIG, forged)).toStrictEqual({ name: SIG, expected: 'valid, key kid-RS256', actual: 'invalid', ok: false });
  });

  it.each([
    ['no key with the kid', JSON.stringify({ keys: [{ kid: 'other', kty: 'RSA' }] }), 'kids ["other"]'],
    ['keys that are not objects', JSON.stringify({ keys: [1, 'x'] }), 'kids []'],
    ['keys that are not a list', JSON.stringify({ keys: { kid: 'kid-RS256' } }), 'kids []'],
  ])('%s', (_what, jwks, actual) => {
    expect(named(withKeys(jwks), SIG)).toStrictEqual({ name: SIG, expected: 'a key with kid kid-RS256', actual, ok: false, note: 'upload the issuer\'s current JWKS again (oz issuer jwks)' });
  });

  it('a jwksJson that is not JSON', () => {
    expect(named(withKeys('nope'), SIG)).toStrictEqual({ name: SIG, expected: "a JWKS holding the token's kid", actual: 'oidc.jwksJson is not JSON', ok: false });
  });

  it('a key that is no usable public key', () => {
    expect(named(withKeys(JSON.stringify({ keys: [{ kid: 'kid-RS256', kty: 'RSA' }] })), SIG)).toStrictEqual({
      name: SIG,
      expected: 'valid, key kid-RS256',
      actual: expect.stringMatching(/^unusable key: ./),
      ok: false,
    });
  });
});
