import { describe, expect, it } from 'vitest';
import { formatClaims, formattedIdentityClaims, MAX_AWS_TOKEN_LENGTH, sessionTagsProblem, STS_AUDIENCE, tokenLengthProblem, type ClaimFormats } from '../../src/core/claim-formats.js';
import type { RunClaims } from '../../src/core/claims.js';

const run: RunClaims = { sub: 'user-42', run_id: 'run-1', teams: ['abc123'], environment: 'env-1', host: 'warp' };
const characters = 'holds a character AWS does not allow in tags (letters, digits, spaces and _.:/=+-@)';

describe('sessionTagsProblem: the characters AWS allows in a tag key', () => {
  it.each([
    ['an empty key', '', `the AWS session tag key "" ${characters}`],
    ['a key with !', 'team!', `the AWS session tag key "team!" ${characters}`],
    ['a key with a comma', 'a,b', `the AWS session tag key "a,b" ${characters}`],
  ])('%s is refused', (_what, key, message) => {
    expect(sessionTagsProblem({ [key]: ['v'] })).toBe(message);
  });

  it.each(['teams', 'run id', 'oz:env/x=1+2-3@4_5.6', 'équipe'])('%s is allowed', (key) => {
    expect(sessionTagsProblem({ [key]: ['v'] })).toBeUndefined();
  });
});

describe('formatClaims with empty lists changes nothing', () => {
  it.each<[string, string, ClaimFormats]>([
    ['an empty subject format', 'api://x', { subjectClaims: [] }],
    ['empty session tags, for STS', STS_AUDIENCE, { sessionTags: [] }],
    ['both empty, for STS', STS_AUDIENCE, { sessionTags: [], subjectClaims: [] }],
  ])('%s', (_what, audience, formats) => {
    expect(formatClaims(run, audience, formats)).toStrictEqual({ ok: true, value: {} });
  });
});

describe('tokenLengthProblem bounds only tokens for STS', () => {
  const long = 'x'.repeat(MAX_AWS_TOKEN_LENGTH + 1);
  it.each([
    ['a long token for another audience', long, 'https://iam.googleapis.com/x', undefined],
    ['a long token for STS', long, STS_AUDIENCE, `the token for ${STS_AUDIENCE} is ${MAX_AWS_TOKEN_LENGTH + 1} characters long, more than the ${MAX_AWS_TOKEN_LENGTH} AWS STS accepts: carry fewer or shorter session tags and claims`],
    ['a token of exactly the bound for STS', 'x'.repeat(MAX_AWS_TOKEN_LENGTH), STS_AUDIENCE, undefined],
  ])('%s', (_what, token, audience, problem) => {
    expect(tokenLengthProblem(token, audience)).toBe(problem);
  });
});

describe('formattedIdentityClaims passes on the limit a format breaks', () => {
  const input = { issuer: 'https://i', audience: STS_AUDIENCE, lifetimeSeconds: 60, now: new Date('2026-06-01T12:00:00Z'), jti: 'j' };
  it.each<[string, RunClaims, ClaimFormats, string]>([
    [
      'a subject over 255 characters',
      { ...run, sub: 'u'.repeat(250) },
      { subjectClaims: ['run_id', 'sub'] },
      `the subject "run_id:run-1:sub:${'u'.repeat(63)}…" is 267 characters long, more than the 255 OIDC and AWS allow`,
    ],
    [
      'a session tag value over 256 characters',
      { ...run, environment: 'e'.repeat(257) },
      { sessionTags: ['environment'] },
      `the AWS session tag environment = "${'e'.repeat(80)}…" is 257 characters long, more than AWS's 256`,
    ],
  ])('%s', (_what, claims, formats, problem) => {
    expect(formattedIdentityClaims(claims, input, formats)).toStrictEqual({ ok: false, problem });
  });
});
