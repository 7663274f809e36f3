import { describe, expect, it } from 'vitest';
import {
  AWS_TAGS_CLAIM,
  encodeSessionTags,
  encodeSubject,
  escapeSubjectValue,
  formatClaims,
  formattedIdentityClaims,
  MAX_AWS_TOKEN_LENGTH,
  ORIGINAL_SUB_CLAIM,
  parseClaimList,
  readClaimFormats,
  sessionTagsProblem,
  subjectProblem,
  tokenLengthProblem,
} from '../../src/core/claim-formats.js';
import { CLAIMS_SUPPORTED, type RunClaims } from '../../src/core/claims.js';
import { RUN_CONTEXT_VARIABLES } from '../../src/core/context.js';
import { subjectPatterns } from '../../src/cloud/scope.js';
import { grantClaims } from '../../src/platform/grant-mint.js';
import { grantShapeProblem } from '../../src/platform/grant-verify.js';
import { claimFormatsFromFlags } from '../../src/cli/grant-run.js';
import { ozError } from '../helpers/thrown.js';

const run: RunClaims = { sub: 'user-42', run_id: 'run-1', teams: ['abc123'], environment: 'env-1', host: 'warp' };
const now = new Date('2026-06-01T12:00:00Z');

/** Decodes a subject the way a reader of the contract would: split on `:`, then undo %3A and %25. */
function decodeSubject(sub: string): [string, string][] {
  const parts = sub.split(':');
  const pairs: [string, string][] = [];
  for (let i = 0; i < parts.length; i += 2) pairs.push([parts[i]!, parts[i + 1]!.replaceAll('%3A', ':').replaceAll('%25', '%')]);
  return pairs;
}

describe('parseClaimList', () => {
  it.each([
    ['teams', ['teams']],
    ['teams,environment,sub', ['teams', 'environment', 'sub']],
    [' sub , teams ,', ['sub', 'teams']],
    ['email,host,run_id,skill_spec,agent_name', ['email', 'host', 'run_id', 'skill_spec', 'agent_name']],
  ])('reads %j', (raw, expected) => {
    expect(parseClaimList(raw)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['teams,team', /"team" is not a run claim: expected a comma list of sub, run_id, email, teams/],
    [',,', /nothing in it/],
    ['iss', /"iss" is not a run claim/],
    ['teams,teams', /teams is named twice/],
    ['oz_sub', /"oz_sub" is not a run claim/],
  ])('refuses %j', (raw, problem) => {
    const r = parseClaimList(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toMatch(problem);
  });
});

describe('encodeSubject', () => {
  it.each<[string, RunClaims, string[], string]>([
    ["the contract's example", run, ['teams', 'environment', 'sub'], 'teams:abc123:environment:env-1:sub:user-42'],
    ['the list order, not the registry order', run, ['sub', 'teams'], 'sub:user-42:teams:abc123'],
    ['a colon in a value as %3A', { ...run, sub: 'local:alice' }, ['teams', 'sub'], 'teams:abc123:sub:local%3Aalice'],
    ['a percent sign as %25, before colons are escaped', { ...run, sub: 'a%3Ab:c%' }, ['sub'], 'sub:a%253Ab%3Ac%25'],
    ['unicode as it is', { ...run, environment: 'prod-ü-日本' }, ['environment'], 'environment:prod-ü-日本'],
    ['several teams joined with commas', { ...run, teams: ['a:1', 'b'] }, ['teams', 'sub'], 'teams:a%3A1,b:sub:user-42'],
    ['a claim the run lacks left out, pair and all', run, ['teams', 'email', 'sub'], 'teams:abc123:sub:user-42'],
  ])('writes %s', (_name, r, claims, expected) => {
    expect(encodeSubject(r, claims as never)).toBe(expected);
  });

  it.each(['plain', 'a:b', '%', '%3A', '::%%::', 'x%253Ay', 'ü:日本:%'])('decodes back exactly: %j', (value) => {
    const sub = encodeSubject({ ...run, sub: value, environment: value }, ['environment', 'sub']);
    expect(decodeSubject(sub)).toEqual([
      ['environment', value],
      ['sub', value],
    ]);
  });

  it('is what oz setup aws matches: its pattern for the team is the token sub with the unpinned parts as *', () => {
    const hostile = { ...run, teams: ['t:%1'], sub: 'u:%' };
    const sub = encodeSubject(hostile, ['teams', 'environment', 'sub']);
    const { patterns } = subjectPatterns({ subjects: ['u:%'], team: 't:%1' }, ['teams', 'environment', 'sub']);
    expect(patterns).toEqual(['teams:t%3A%251:environment:*:sub:u%3A%25']);
    expect(sub).toBe('teams:t%3A%251:environment:env-1:sub:u%3A%25');
    expect(escapeSubjectValue('t:%1')).toBe('t%3A%251');
  });
});

describe('encodeSessionTags', () => {
  it.each<[string, RunClaims, string[], Record<string, [string]>]>([
    ['one tag per claim, one value each', run, ['teams', 'environment'], { teams: ['abc123'], environment: ['env-1'] }],
    ['several teams joined with a colon', { ...run, teams: ['a', 'b', 'c'] }, ['teams'], { teams: ['a:b:c'] }],
    ['a claim the run lacks left out', run, ['teams', 'email'], { teams: ['abc123'] }],
    ['the identity sub, as the run has it', run, ['sub', 'run_id'], { sub: ['user-42'], run_id: ['run-1'] }],
  ])('%s; every key transitive', (_name, r, claims, tags) => {
    expect(encodeSessionTags(r, claims as never)).toEqual({ principal_tags: tags, transitive_tag_keys: Object.keys(tags) });
  });
});

describe("AWS's limits", () => {
  const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, ['v']]));
  it.each<[string, Record<string, string[]>, RegExp | undefined]>([
    ['50 tags', tags(50), undefined],
    ['51 tags', tags(51), /^51 AWS session tags, more than AWS's 50$/],
    ['a 256-character value', { teams: ['a'.repeat(256)] }, undefined],
    ['a 257-character value', { teams: ['a'.repeat(257)] }, /teams = "a+…" is 257 characters long, more than AWS's 256/],
    ['256 characters that are each two UTF-16 units', { teams: ['😀'.repeat(256)] }, /holds a character AWS does not allow/],
    ['256 letters outside the BMP', { teams: ['𝐀'.repeat(256)] }, undefined],
    ['a 128-character key', { ['k'.repeat(128)]: ['v'] }, undefined],
    ['a 129-character key', { ['k'.repeat(129)]: ['v'] }, /key "k+…" is 129 characters long, more than AWS's 128/],
    ['unicode letters, spaces and _.:/=+-@', { environment: ['Ünïcode 日本 a_b.c:d/e=f+g-h@i'] }, undefined],
    ['an email and a skill spec', { email: ['dev@example.com'], skill_spec: ['org/repo:.warp/skills/name/SKILL.md'] }, undefined],
    ['a comma', { teams: ['a,b'] }, /teams = "a,b" holds a character AWS does not allow in tags/],
    ['a percent sign', { teams: ['50%'] }, /holds a character AWS does not allow/],
    ['a quote', { agent_name: ['say "hi"'] }, /agent_name = "say \\"hi\\"" holds a character/],
    ['an asterisk', { environment: ['prod*'] }, /holds a character/],
  ])('%s', (_name, t, problem) => {
    const p = sessionTagsProblem(t);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });

  it.each([
    ['a'.repeat(255), undefined],
    ['a'.repeat(256), /is 256 characters long, more than the 255 OIDC and AWS allow/],
    ['日'.repeat(255), undefined],
  ])('a subject of %#', (sub, problem) => {
    const p = subjectProblem(sub);
    if (problem === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(problem);
  });

  it('bounds only tokens for STS at 20,000 characters', () => {
    expect(tokenLengthProblem('x'.repeat(MAX_AWS_TOKEN_LENGTH), 'sts.amazonaws.com')).toBeUndefined();
    expect(tokenLengthProblem('x'.repeat(MAX_AWS_TOKEN_LENGTH + 1), 'sts.amazonaws.com')).toMatch(/20001 characters long, more than the 20000 AWS STS accepts/);
    expect(tokenLengthProblem('x'.repeat(MAX_AWS_TOKEN_LENGTH + 1), 'https://vault.example.com')).toBeUndefined();
  });
});

describe('formatClaims', () => {
  const both = { sessionTags: ['teams'], subjectClaims: ['teams', 'sub'] } as const;

  it('formats sub for every audience and keeps the identity under oz_sub; tags go to STS only', () => {
    expect(formatClaims(run, 'sts.amazonaws.com', both)).toEqual({
      ok: true,
      value: { sub: 'teams:abc123:sub:user-42', [ORIGINAL_SUB_CLAIM]: 'user-42', [AWS_TAGS_CLAIM]: { principal_tags: { teams: ['abc123'] }, transitive_tag_keys: ['teams'] } },
    });
    expect(formatClaims(run, '//iam.googleapis.com/projects/1/x', both)).toEqual({ ok: true, value: { sub: 'teams:abc123:sub:user-42', oz_sub: 'user-42' } });
    expect(formatClaims(run, 'sts.amazonaws.com', {})).toEqual({ ok: true, value: {} });
  });

  it('refuses a subject the format makes too long, never cutting it', () => {
    const r = formatClaims({ ...run, environment: 'e'.repeat(240) }, 'https://vault.example.com', { subjectClaims: ['teams', 'environment', 'sub'] });
    expect(r).toEqual({ ok: false, problem: expect.stringMatching(/^the subject "teams:abc123:environment:e+…" is 277 characters long, more than the 255/) });
  });

  it('refuses a tag value AWS would refuse, only where tags go', () => {
    const bad = { ...run, environment: 'prod*' };
    expect(formatClaims(bad, 'sts.amazonaws.com', { sessionTags: ['environment'] })).toMatchObject({ ok: false, problem: expect.stringMatching(/environment = "prod\*"/) });
    expect(formatClaims(bad, 'https://vault.example.com', { sessionTags: ['environment'] }).ok).toBe(true);
  });

  it('gives the whole identity token, the formats applied over the run claims', () => {
    const r = formattedIdentityClaims(run, { issuer: 'https://i', audience: 'sts.amazonaws.com', lifetimeSeconds: 60, now, jti: 'j' }, both);
    expect(r.ok && r.value).toMatchObject({ iss: 'https://i', sub: 'teams:abc123:sub:user-42', oz_sub: 'user-42', teams: ['abc123'], jti: 'j' });
  });
});

describe('where the formats come from', () => {
  it('the embedded issuer reads OZ_AWS_SESSION_TAGS and OZ_SUBJECT_CLAIMS; empty is unset; a bad one is a config error', () => {
    expect(readClaimFormats({ OZ_AWS_SESSION_TAGS: 'teams', OZ_SUBJECT_CLAIMS: 'teams,sub' })).toEqual({ sessionTags: ['teams'], subjectClaims: ['teams', 'sub'] });
    expect(readClaimFormats({ OZ_AWS_SESSION_TAGS: '', OZ_SUBJECT_CLAIMS: '' })).toEqual({});
    expect(ozError(() => readClaimFormats({ OZ_SUBJECT_CLAIMS: 'teams,nope' }))).toMatchObject({
      code: 'config',
      message: 'invalid OZ_SUBJECT_CLAIMS "teams,nope": "nope" is not a run claim: expected a comma list of sub, run_id, email, teams, environment, agent_name, skill_spec, host',
    });
  });

  it('remote mode ignores them: they are run-context variables', () => {
    expect(RUN_CONTEXT_VARIABLES).toEqual(expect.arrayContaining(['OZ_AWS_SESSION_TAGS', 'OZ_SUBJECT_CLAIMS']));
  });

  it('discovery lists oz_sub and the session-tags claim', () => {
    expect(CLAIMS_SUPPORTED).toEqual(expect.arrayContaining(['oz_sub', 'https://aws.amazon.com/tags']));
  });

  it('grant-run reads its flags, a bad list or a value AWS would refuse being a usage error', () => {
    expect(claimFormatsFromFlags({ awsSessionTags: 'teams', subjectClaims: 'teams,environment,sub' }, run)).toEqual({ sessionTags: ['teams'], subjectClaims: ['teams', 'environment', 'sub'] });
    expect(claimFormatsFromFlags({}, run)).toEqual({});
    expect(ozError(() => claimFormatsFromFlags({ awsSessionTags: 'team' }, run))).toMatchObject({ code: 'usage', message: expect.stringMatching(/^invalid --aws-session-tags "team": "team" is not a run claim/) });
    expect(ozError(() => claimFormatsFromFlags({ awsSessionTags: 'skill_spec' }, { ...run, skill_spec: 'org/repo:a b?' }))).toMatchObject({
      code: 'usage',
      message: 'cannot grant this run with --aws-session-tags: the AWS session tag skill_spec = "org/repo:a b?" holds a character AWS does not allow in tags (letters, digits, spaces and _.:/=+-@)',
    });
    expect(ozError(() => claimFormatsFromFlags({ subjectClaims: 'sub,skill_spec' }, { ...run, skill_spec: 's'.repeat(300) }))).toMatchObject({
      code: 'usage',
      message: expect.stringMatching(/^cannot grant this run with --subject-claims: the subject "sub:user-42:skill_spec:s+…" is 323 characters long, more than the 255/),
    });
  });

  it('a grant carries the lists, and the token service refuses a grant whose lists are malformed', () => {
    const g = grantClaims({ issuer: 'https://i', run, formats: { sessionTags: ['teams'], subjectClaims: ['teams', 'sub'] }, deadline: new Date(now.getTime() + 3600_000), now });
    expect(g).toMatchObject({ aws_session_tags: ['teams'], subject_claims: ['teams', 'sub'] });
    expect(grantShapeProblem(g as unknown as Record<string, unknown>)).toBeUndefined();
    expect('aws_session_tags' in grantClaims({ issuer: 'https://i', run, deadline: now, now })).toBe(false);
    for (const bad of [[], 'teams', ['teams', 'bogus'], ['teams,sub'], [1]]) {
      expect(grantShapeProblem({ ...g, subject_claims: bad })).toMatch(/subject_claims/);
      expect(grantShapeProblem({ ...g, aws_session_tags: bad })).toMatch(/aws_session_tags/);
    }
  });
});
