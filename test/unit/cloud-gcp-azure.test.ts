import { describe, expect, it } from 'vitest';
import { evaluateCel, evaluateGcpProvider, parseGcpProvider } from '../../src/cloud/gcp-provider.js';
import { evaluateAzureCredentials, parseFederatedCredentials } from '../../src/cloud/azure-credential.js';
import { OzError } from '../../src/core/errors.js';
import { ISSUER, NOW, T, jwksJson, signToken, type Signed } from '../helpers/cloud-tokens.js';

const NAME = 'projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
const AUD = `https://iam.googleapis.com/${NAME}`;

function provider(over: Record<string, unknown> = {}, oidc: Record<string, unknown> = {}) {
  return {
    name: NAME,
    state: 'ACTIVE',
    attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.run_id': 'assertion.run_id' },
    attributeCondition: "'team-a' in assertion.teams",
    oidc: { issuerUri: ISSUER, ...oidc },
    ...over,
  };
}

function gcp(doc: unknown, token: Signed = signToken({ aud: AUD })) {
  return evaluateGcpProvider(parseGcpProvider(JSON.stringify(doc), 'provider.json'), token.decoded, { now: NOW });
}

const failing = (v: { checks: { ok: boolean; name: string }[] }) => v.checks.filter((c) => !c.ok).map((c) => c.name);

describe('CEL, as Google evaluates attribute mappings and conditions', () => {
  const assertion = { skill: 'org/repo:.warp/SKILL.md', sub: 'user-42', teams: ['team-a', 'team-b'], email: 'Dev@Example.com', n: 3 };
  it.each([
    ['assertion.sub', 'user-42'],
    ["'team-a' in assertion.teams", true],
    ["'team-c' in assertion.teams", false],
    ["assertion.sub.startsWith('user-') && size(assertion.teams) == 2", true],
    ["has(assertion.environment) ? assertion.environment : 'none'", 'none'],
    ["assertion.email.lowerAscii()", 'dev@example.com'],
    ["'x-' + assertion.sub", 'x-user-42'],
    ["assertion.sub.extract('user-{id}')", '42'],
    ["assertion.skill.extract('{org}/')", 'org'],
    ["assertion.skill.extract('/repo:{path}')", '.warp/SKILL.md'],
    ["assertion.sub.extract('nope-{x}')", ''],
    ['assertion.teams', ['team-a', 'team-b']],
  ])('%s', (expression, value) => {
    expect(evaluateCel(expression, { assertion })).toEqual({ ok: true, value });
  });

  it.each([
    ['assertion.environment', /environment/],
    ["assertion.sub ==", /.+/],
    ['assertion.sub + 1', /.+/],
  ])('%s is an error, reported as data', (expression, message) => {
    const r = evaluateCel(expression, { assertion });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });
});

describe('evaluateGcpProvider', () => {
  it('accepts a token for the team, with the default audience (https: form and // form)', () => {
    const v = gcp(provider());
    expect(v.accepted).toBe(true);
    expect(v.outcome).toMatchObject({ attributes: { 'google.subject': 'user-42', 'attribute.run_id': 'run-1' } });
    expect(gcp(provider(), signToken({ aud: `//iam.googleapis.com/${NAME}` })).accepted).toBe(true);
  });

  it('refuses another team through the attribute condition', () => {
    const v = gcp(provider(), signToken({ aud: AUD, teams: ['team-b'] }));
    expect(failing(v)).toEqual(['attribute condition']);
    expect(v.checks.find((c) => c.name === 'attribute condition')).toMatchObject({ expected: "'team-a' in assertion.teams is true", actual: 'false' });
  });

  it('the condition sees google.* and attribute.* from the mapping', () => {
    expect(gcp(provider({ attributeCondition: "attribute.run_id == 'run-1' && google.subject == 'user-42'" })).accepted).toBe(true);
  });

  it('the audience: only the allowed audiences when there are any', () => {
    const withList = provider({}, { allowedAudiences: ['https://oz.example.com/gcp'] });
    expect(failing(gcp(withList))).toEqual(['audience (aud)']);
    expect(gcp(withList, signToken({ aud: 'https://oz.example.com/gcp' })).accepted).toBe(true);
    expect(failing(gcp(provider(), signToken({ aud: 'sts.amazonaws.com' })))).toEqual(['audience (aud)']);
  });

  it('google.subject is at most 127 bytes, counted in UTF-8', () => {
    expect(gcp(provider(), signToken({ aud: AUD, sub: 'u'.repeat(127) })).accepted).toBe(true);
    expect(failing(gcp(provider(), signToken({ aud: AUD, sub: 'u'.repeat(128) })))).toEqual(['attribute mapping google.subject = assertion.sub']);
    expect(failing(gcp(provider(), signToken({ aud: AUD, sub: 'é'.repeat(64) })))).toHaveLength(1);
  });

  it('a mapping that fails to evaluate refuses the token', () => {
    const v = gcp(provider({ attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.email': 'assertion.email' } }));
    expect(failing(v)).toEqual(['attribute mapping attribute.email']);
    expect(failing(gcp(provider({ attributeMapping: { 'attribute.x': 'assertion.sub' } })))).toContain('attribute mapping google.subject');
  });

  it('lifetime under 48 h, issuer exact, algorithm, provider state', () => {
    expect(gcp(provider(), signToken({ aud: AUD, iat: T - 10, exp: T + 47 * 3600 })).accepted).toBe(true);
    expect(failing(gcp(provider(), signToken({ aud: AUD, iat: T - 10, exp: T - 10 + 48 * 3600 })))).toEqual(['lifetime (exp - iat)']);
    const slash = gcp(provider(), signToken({ aud: AUD, iss: `${ISSUER}/` }));
    expect(failing(slash)).toEqual(['issuer (iss)']);
    expect(slash.checks[1]?.note).toMatch(/trailing slash/);
    expect(gcp(provider(), signToken({ aud: AUD }, { alg: 'ES256' })).accepted).toBe(true);
    expect(failing(gcp(provider(), signToken({ aud: AUD }, { header: { alg: 'RS384' } })))).toContain('signature algorithm (alg)');
    expect(failing(gcp(provider({ state: 'DELETED' })))).toEqual(['provider state']);
  });

  it('with jwksJson (an issuer that is not public) the signature is checked offline', () => {
    expect(gcp(provider({}, { jwksJson: jwksJson() })).accepted).toBe(true);
    const good = signToken({ aud: AUD });
    const tampered = signToken({ aud: AUD, teams: ['team-a', 'x'] });
    const forged = { text: '', decoded: { ...tampered.decoded, signature: good.decoded.signature } };
    expect(failing(gcp(provider({}, { jwksJson: jwksJson() }), forged))).toEqual(["signature (against the provider's jwksJson)"]);
    expect(failing(gcp(provider({}, { jwksJson: '{"keys":[]}' })))).toEqual(["signature (against the provider's jwksJson)"]);
  });

  it.each([
    ['not JSON', 'nope', /not JSON/],
    ['a SAML provider', '{"name":"x","saml":{}}', /SAML/],
    ['no issuer', JSON.stringify({ name: NAME, oidc: {} }), /issuerUri/],
    ['no name and no audiences', JSON.stringify({ oidc: { issuerUri: ISSUER } }), /name is needed/],
  ])('a provider with %s is a usage error', (_what, text, message) => {
    expect(() => parseGcpProvider(text, 'provider.json')).toThrow(message);
    try {
      parseGcpProvider(text, 'provider.json');
    } catch (e) {
      expect((e as OzError).code).toBe('usage');
    }
  });
});

describe('evaluateAzureCredentials', () => {
  const cred = (subject: string, issuer = ISSUER, audiences = ['api://AzureADTokenExchange']) => ({ name: `c-${subject}`, issuer, subject, audiences, description: null, id: 'x' });
  const azure = (list: unknown, token = signToken({ aud: 'api://AzureADTokenExchange' })) =>
    evaluateAzureCredentials(parseFederatedCredentials(JSON.stringify(list), 'creds.json'), token.decoded, { now: NOW });

  it('picks the credential that matches issuer and subject out of a list', () => {
    const v = azure([cred('user-1'), cred('user-42', 'https://other.example.com'), cred('user-42')]);
    expect(v.accepted).toBe(true);
    expect(v.outcome).toEqual({ credential: 'c-user-42' });
  });

  it('subject and issuer compare exactly, case and trailing slash included', () => {
    const v = azure([cred('User-42')]);
    expect(failing(v)).toEqual(['subject (sub)']);
    expect(v.checks.find((c) => c.name === 'subject (sub)')?.note).toMatch(/case/);
    expect(failing(azure([cred('user-42', `${ISSUER}/`)]))).toEqual(['issuer (iss)']);
  });

  it('one audience, RS256 only', () => {
    expect(failing(azure([cred('user-42', ISSUER, ['api://AzureADTokenExchange', 'x'])]))).toEqual(['credential audiences']);
    expect(failing(azure([cred('user-42')], signToken({ aud: 'sts.amazonaws.com' })))).toEqual(['audience (aud)']);
    expect(failing(azure([cred('user-42')], signToken({ aud: 'api://AzureADTokenExchange' }, { alg: 'ES256' })))).toEqual(['signature algorithm (alg)']);
  });

  it('reads one credential as show prints it; an empty list is a usage error', () => {
    expect(azure(cred('user-42')).accepted).toBe(true);
    expect(() => parseFederatedCredentials('[]', 'creds.json')).toThrow(/empty/);
    expect(() => parseFederatedCredentials('[{"subject":"x"}]', 'creds.json')).toThrow(/no issuer/);
  });
});
