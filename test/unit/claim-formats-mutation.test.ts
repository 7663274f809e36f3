import { describe, expect, it } from 'vitest';
import { formatClaims, MAX_AWS_TOKEN_LENGTH, sessionTagsProblem, STS_AUDIENCE, tokenLengthProblem, type ClaimFormats } from '../../src/core/claim-formats.js';
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
