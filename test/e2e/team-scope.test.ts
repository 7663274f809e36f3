// Session tags and subject formats at the command line: who may choose them, what each mode
// signs, what whoami shows, and the one-line refusals when a relying party's limit is broken.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES } from '../../src/core/errors.js';
import { loadSigningKey } from '../../src/core/keys.js';
import { grantClaims, mintGrant } from '../../src/platform/grant-mint.js';
import { decode, oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';

const TAGS = 'https://aws.amazon.com/tags';
let platformEnv: Record<string, string>;
let issuer: Served;

beforeAll(async () => {
  platformEnv = scrubbedEnv(tempDir('oz-scope-cli-'));
  issuer = await serve(platformEnv);
  platformEnv.OZ_ISSUER_URL = issuer.url;
});
afterAll(async () => {
  await issuer?.stop();
});

function oneLineError(stderr: string, message: RegExp): void {
  expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(stderr).toMatch(/^oz: /);
  expect(stderr.trimEnd()).toMatch(message);
}

const embeddedEnv = (extra: Record<string, string>) =>
  scrubbedEnv(tempDir(), { OZ_SUBJECT: 'user-42', OZ_TEAMS: 'abc123', OZ_ENVIRONMENT_ID: 'env-1', OZ_RUN_ID: 'run-1', ...extra });

async function grant(args: string[]): Promise<string> {
  const r = await oz(['issuer', 'grant-run', '--run-id', 'run-9', '--subject', 'user-9', '--teams', 'abc123,def456', '--environment', 'env-9', ...args], { env: platformEnv });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

const sandboxEnv = (runToken: string, extra: Record<string, string> = {}) => scrubbedEnv(tempDir(), { OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: issuer.url, ...extra });

describe('the embedded issuer, formats from the environment', () => {
  it('tags tokens for STS only, and formats sub for every audience, keeping the identity in oz_sub', async () => {
    const env = embeddedEnv({ OZ_AWS_SESSION_TAGS: 'teams,environment', OZ_SUBJECT_CLAIMS: 'teams,sub' });
    const aws = decode((await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env })).stdout.trim()).claims;
    expect(aws).toMatchObject({ sub: 'teams:abc123:sub:user-42', oz_sub: 'user-42', [TAGS]: { principal_tags: { teams: ['abc123'], environment: ['env-1'] }, transitive_tag_keys: ['teams', 'environment'] } });
    const vault = decode((await oz(['federate', 'issue-token', '--audience', 'https://vault.example.com'], { env })).stdout.trim()).claims;
    expect(vault).toMatchObject({ sub: 'teams:abc123:sub:user-42', oz_sub: 'user-42' });
    expect(vault[TAGS]).toBeUndefined();
    const plain = decode((await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: embeddedEnv({}) })).stdout.trim()).claims;
    expect(plain.sub).toBe('user-42');
    expect(plain).not.toHaveProperty('oz_sub');
    expect(plain).not.toHaveProperty([TAGS]);
  });

  it.each([
    [{ OZ_SUBJECT_CLAIMS: 'teams,team' }, /^oz: invalid OZ_SUBJECT_CLAIMS "teams,team": "team" is not a run claim/],
    [{ OZ_AWS_SESSION_TAGS: 'teams,teams' }, /^oz: invalid OZ_AWS_SESSION_TAGS "teams,teams": teams is named twice/],
    [{ OZ_AWS_SESSION_TAGS: 'environment', OZ_ENVIRONMENT_ID: 'prod*' }, /the AWS session tag environment = "prod\*" holds a character AWS does not allow in tags .*\(from OZ_AWS_SESSION_TAGS\)$/],
    [{ OZ_AWS_SESSION_TAGS: 'environment', OZ_ENVIRONMENT_ID: 'e'.repeat(257) }, /environment = "e+…" is 257 characters long, more than AWS's 256/],
    [{ OZ_SUBJECT_CLAIMS: 'environment,sub', OZ_ENVIRONMENT_ID: 'e'.repeat(250) }, /the subject "environment:e+…" is 274 characters long, more than the 255 OIDC and AWS allow/],
  ])('%j is a configuration error, on one line, and nothing is printed', async (extra, message) => {
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: embeddedEnv(extra) });
    expect(r.code).toBe(EXIT_CODES.config);
    expect(r.stdout).toBe('');
    oneLineError(r.stderr, message);
  });

  it('in --format gcp a refusal is the structured failure, with stderr empty', async () => {
    const r = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q'], {
      env: embeddedEnv({ OZ_SUBJECT_CLAIMS: 'environment,sub', OZ_ENVIRONMENT_ID: 'e'.repeat(250) }),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT_CODES.config);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, success: false, code: 'config', message: expect.stringMatching(/more than the 255/) });
  });

  it('whoami shows the subject and the tags a token for AWS would carry', async () => {
    const env = embeddedEnv({ OZ_AWS_SESSION_TAGS: 'teams', OZ_SUBJECT_CLAIMS: 'teams,environment,sub', OZ_SUBJECT: 'local:alice' });
    const text = await oz(['federate', 'whoami'], { env });
    expect(text.stdout).toMatch(/aws sub +teams:abc123:environment:env-1:sub:local%3Aalice +from OZ_AWS_SESSION_TAGS, OZ_SUBJECT_CLAIMS\n/);
    expect(text.stdout).toMatch(/aws tags +teams=abc123 /);
    const json = JSON.parse((await oz(['federate', 'whoami', '--json'], { env })).stdout);
    expect(json).toMatchObject({
      aws_session_tags: ['teams'],
      subject_claims: ['teams', 'environment', 'sub'],
      aws: { sub: 'teams:abc123:environment:env-1:sub:local%3Aalice', session_tags: { teams: 'abc123' }, problem: null },
    });
    const broken = JSON.parse((await oz(['federate', 'whoami', '--json'], { env: { ...env, OZ_TEAMS: 'a,b*' } })).stdout);
    expect(broken.aws).toMatchObject({ sub: null, problem: expect.stringMatching(/teams = "a:b\*" holds a character/) });
  });
});

describe('the token service, formats from the grant', () => {
  it('applies the grant\'s formats and ignores the sandbox\'s variables, which whoami names', async () => {
    const runToken = await grant(['--aws-session-tags', 'teams', '--subject-claims', 'teams,sub']);
    // The sandbox asks for other formats and claims another identity: nothing of it is read.
    const env = sandboxEnv(runToken, { OZ_AWS_SESSION_TAGS: 'sub', OZ_SUBJECT_CLAIMS: 'sub', OZ_TEAMS: 'other' });
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r.stderr).toBe('');
    const claims = decode(r.stdout.trim()).claims;
    expect(claims).toMatchObject({ sub: 'teams:abc123,def456:sub:user-9', oz_sub: 'user-9', teams: ['abc123', 'def456'], [TAGS]: { principal_tags: { teams: ['abc123:def456'] }, transitive_tag_keys: ['teams'] } });
    const gcp = decode((await oz(['federate', 'issue-token', '--audience', 'https://vault.example.com'], { env })).stdout.trim()).claims;
    expect(gcp).toMatchObject({ sub: 'teams:abc123,def456:sub:user-9', oz_sub: 'user-9' });
    expect(gcp[TAGS]).toBeUndefined();

    const who = await oz(['federate', 'whoami'], { env });
    expect(who.stdout).toMatch(/aws sub +teams:abc123,def456:sub:user-9 +from the run token\n/);
    expect(who.stdout).toMatch(/aws tags +teams=abc123:def456 +from the run token\n/);
    expect(who.stdout).toMatch(/Ignored in this mode: OZ_TEAMS, OZ_AWS_SESSION_TAGS, OZ_SUBJECT_CLAIMS /);
    const json = JSON.parse((await oz(['federate', 'whoami', '--json'], { env })).stdout);
    expect(json).toMatchObject({ aws_session_tags: ['teams'], subject_claims: ['teams', 'sub'], ignored_variables: ['OZ_TEAMS', 'OZ_AWS_SESSION_TAGS', 'OZ_SUBJECT_CLAIMS'] });
  });

  it('a grant without formats gives plain tokens, whatever the sandbox sets', async () => {
    const env = sandboxEnv(await grant([]), { OZ_AWS_SESSION_TAGS: 'teams', OZ_SUBJECT_CLAIMS: 'teams,sub' });
    const claims = decode((await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env })).stdout.trim()).claims;
    expect(claims.sub).toBe('user-9');
    expect(claims).not.toHaveProperty('oz_sub');
    expect(claims).not.toHaveProperty([TAGS]);
  });

  it('refuses, with 422 and exit 6, a grant whose values break a limit at signing', async () => {
    // A grant made without grant-run's checks, as another minting program could make one.
    const key = loadSigningKey(platformEnv.OZ_DATA_DIR!);
    const now = new Date();
    const runToken = mintGrant(
      grantClaims({ issuer: issuer.url, run: { sub: 'user-9', run_id: 'run-9', environment: 'prod*' }, formats: { sessionTags: ['environment'] }, deadline: new Date(now.getTime() + 600_000), now }),
      key,
    );
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: sandboxEnv(runToken) });
    expect(r.code).toBe(EXIT_CODES.remote_denied);
    expect(r.stdout).toBe('');
    oneLineError(r.stderr, /refused the request: .*this run's grant gives no token for "sts.amazonaws.com": the AWS session tag environment = "prod\*" holds a character AWS does not allow/);
    // Tags go to STS only, so the same grant still serves another audience.
    expect((await oz(['federate', 'issue-token', '--audience', 'https://vault.example.com'], { env: sandboxEnv(runToken) })).code).toBe(0);
  });
});

describe('grant-run checks what the grant fixes', () => {
  it.each([
    [['--aws-session-tags', 'teams,bogus'], /^oz: invalid --aws-session-tags "teams,bogus": "bogus" is not a run claim: expected a comma list of sub, run_id, email, teams, environment, agent_name, skill_spec, host$/],
    [['--subject-claims', ''], /^oz: invalid --subject-claims "": nothing in it/],
    [['--aws-session-tags', 'skill_spec', '--skill-spec', 'org/repo:a?b'], /^oz: cannot grant this run with --aws-session-tags: the AWS session tag skill_spec = "org\/repo:a\?b" holds a character AWS does not allow/],
    [['--subject-claims', 'skill_spec,sub', '--skill-spec', 's'.repeat(250)], /^oz: cannot grant this run with --subject-claims: the subject "skill_spec:s+…" is 272 characters long, more than the 255/],
  ])('%j is a usage error on one line, and no grant is printed', async (args, message) => {
    const r = await oz(['issuer', 'grant-run', '--run-id', 'run-9', '--subject', 'user-9', '--teams', 'abc123', ...args], { env: platformEnv });
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stdout).toBe('');
    oneLineError(r.stderr, message);
  });

  it('--json shows the lists in the grant', async () => {
    const r = await oz(['issuer', 'grant-run', '--run-id', 'run-9', '--subject', 'user-9', '--aws-session-tags', 'teams, environment', '--subject-claims', 'sub', '--json'], { env: platformEnv });
    expect(JSON.parse(r.stdout).claims).toMatchObject({ aws_session_tags: ['teams', 'environment'], subject_claims: ['sub'] });
  });
});

it('discovery lists oz_sub and the session-tags claim', async () => {
  const doc = (await (await fetch(`${issuer.url}/.well-known/openid-configuration`)).json()) as { claims_supported: string[] };
  expect(doc.claims_supported).toEqual(expect.arrayContaining(['oz_sub', TAGS]));
});

describe('oz setup gcp with --team-by subject reads the identity from oz_sub', () => {
  it('admits a formatted token of the subject, where a mapping of sub would refuse it', async () => {
    const home = tempDir();
    const env = scrubbedEnv(home, { OZ_ISSUER_URL: 'https://oidc.example.com/oz', OZ_SUBJECT: 'user-42', OZ_TEAMS: 'abc123', OZ_ENVIRONMENT_ID: 'env-1', OZ_SUBJECT_CLAIMS: 'teams,environment,sub' });
    const provider = async (teamBy: string) => {
      const r = await oz(['setup', 'gcp', '--subject', 'user-42', '--team', 'abc123', '--team-by', teamBy, '--project-number', '123456789012', '--format', 'json'], { env });
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout);
      const file = join(home, `provider-${teamBy}.json`);
      writeFileSync(file, JSON.stringify({ name: s.provider.name, state: 'ACTIVE', disabled: false, attributeMapping: s.attribute_mapping, attributeCondition: s.attribute_condition, oidc: { issuerUri: s.provider.issuer_uri } }));
      return { s, file, stderr: r.stderr };
    };
    const bySubject = await provider('subject');
    expect(bySubject.s.attribute_mapping['google.subject']).toBe('assertion.oz_sub');
    expect(bySubject.s.attribute_condition).toBe('"abc123" in assertion.teams && assertion.oz_sub == "user-42"');
    expect(bySubject.s.members).toEqual([`principal://iam.googleapis.com/${bySubject.s.pool.name}/subject/user-42`]);
    expect(bySubject.stderr).toMatch(/google.subject maps oz_sub/);
    const ok = await oz(['federate', 'explain', '--gcp-provider', bySubject.file, '--json'], { env });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ accepted: true, outcome: { attributes: { 'google.subject': 'user-42' } } });
    const other = await oz(['federate', 'explain', '--gcp-provider', bySubject.file], { env: { ...env, OZ_SUBJECT: 'user-7' } });
    expect(other.code).toBe(EXIT_CODES.refused);

    // Set up as if sub were the identity, the same formatted token is refused.
    const byTags = await provider('tags');
    expect(byTags.s.attribute_mapping['google.subject']).toBe('assertion.sub');
    expect((await oz(['federate', 'explain', '--gcp-provider', byTags.file], { env })).code).toBe(EXIT_CODES.refused);
  });
});
