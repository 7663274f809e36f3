// AWS roles scoped by team, end to end: `oz setup aws` writes the trust policies (session tags,
// and the subject format), the STS stand-in judges them as IAM does, and the real clients (the
// AWS SDK for JavaScript and boto3) use the token file `eval "$(oz federate prepare …)"` wrote.
// A run of the team is admitted and a run of another team refused, with the embedded issuer
// (formats from OZ_AWS_SESSION_TAGS / OZ_SUBJECT_CLAIMS) and with the token service (formats
// in the grant; the sandbox's own variables ignored). `oz federate explain` agrees with STS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_CODES } from '../../src/core/errors.js';
import { OZ_BIN, decode, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { startAwsSts, type AwsStsStandIn } from '../helpers/standins.js';
import type { PolicyDocument } from '../helpers/iam-policy.js';
import { networkTrapEnv, resolveAwsJs, resolveBoto3 } from '../helpers/clients.js';

const ACCOUNT = '123456789012';
const THUMB = '08745487e891c19e3078c1f2a07e452950ef36f6';
const TEAM = 'abc123';
const OTHER = 'xyz789';

let home: string;
let platformEnv: Record<string, string>;
let issuer: Served;
let sts: AwsStsStandIn;
const roles: Record<'tags' | 'subject', { arn: string; policyFile: string; policy: PolicyDocument & Record<string, any> }> = {} as never;

beforeAll(async () => {
  home = tempDir('oz-team-scope-');
  platformEnv = scrubbedEnv(home);
  issuer = await serve(platformEnv);
  platformEnv.OZ_ISSUER_URL = issuer.url;
  // setup insists on https (AWS fetches discovery over it); the provider's name, which the
  // policy's condition keys use, is the same host and port the stand-in trusts over http.
  const httpsIssuer = issuer.url.replace(/^http:/, 'https:');
  for (const teamBy of ['tags', 'subject'] as const) {
    const r = await oz(
      ['setup', 'aws', '--issuer', httpsIssuer, '--team', TEAM, '--team-by', teamBy, '--account-id', ACCOUNT, '--role-name', `team-by-${teamBy}`, '--thumbprint', THUMB, '--format', 'json'],
      { env: platformEnv },
    );
    expect(r.stderr).toBe('');
    const s = JSON.parse(r.stdout);
    const policyFile = join(home, `policy-${teamBy}.json`);
    writeFileSync(policyFile, JSON.stringify(s.trust_policy));
    roles[teamBy] = { arn: s.role.arn, policyFile, policy: s.trust_policy };
  }
  sts = await startAwsSts({ trustedIssuers: [issuer.url], trustPolicies: { [roles.tags.arn]: roles.tags.policy, [roles.subject.arn]: roles.subject.policy } });
});

afterAll(async () => {
  await Promise.all([sts?.close(), issuer?.stop()]);
});

it('oz setup aws wrote one policy per method, for the team', () => {
  const host = issuer.url.replace(/^http:\/\//, '');
  expect((roles.tags.policy.Statement as unknown[])[0]).toMatchObject({
    Action: ['sts:AssumeRoleWithWebIdentity', 'sts:TagSession'],
    Condition: { StringEquals: { [`${host}:aud`]: 'sts.amazonaws.com', 'aws:RequestTag/teams': TEAM } },
  });
  expect((roles.subject.policy.Statement as unknown[])[0]).toMatchObject({
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: { StringLike: { [`${host}:sub`]: `teams:${TEAM}:environment:*:sub:*` } },
  });
});

/** The formats' variables for one method, as the platform sets them for the embedded issuer. */
const FORMAT_ENV = { tags: { OZ_AWS_SESSION_TAGS: 'teams' }, subject: { OZ_SUBJECT_CLAIMS: 'teams,environment,sub' } } as const;
const FORMAT_FLAGS = { tags: ['--aws-session-tags', 'teams'], subject: ['--subject-claims', 'teams,environment,sub'] } as const;

let runs = 0;
/** The sandbox's environment for a run of `team`, in either mode, with the formats of `method`. */
async function sandbox(mode: 'embedded' | 'remote', method: 'tags' | 'subject', team: string): Promise<Record<string, string>> {
  const dir = tempDir('oz-team-run-');
  const id = `run-${++runs}`;
  if (mode === 'embedded') {
    return scrubbedEnv(dir, {
      OZ_ISSUER_URL: issuer.url,
      OZ_DATA_DIR: platformEnv.OZ_DATA_DIR ?? join(home, '.local/share/oz'),
      OZ_SUBJECT: 'user:42',
      OZ_RUN_ID: id,
      OZ_TEAMS: team,
      OZ_ENVIRONMENT_ID: 'env-1',
      ...FORMAT_ENV[method],
      OZ_PREPARE_DIR: join(dir, 'prepared'),
    });
  }
  const g = await run(OZ_BIN, ['issuer', 'grant-run', '--run-id', id, '--subject', 'user:42', '--teams', team, '--environment', 'env-1', ...FORMAT_FLAGS[method]], { env: platformEnv });
  expect(g.stderr).toBe('');
  expect(g.code).toBe(0);
  // The sandbox claims the team and asks for the other format: none of it is read.
  return scrubbedEnv(dir, {
    OZ_RUN_TOKEN: g.stdout.trim(),
    OZ_ISSUER_URL: issuer.url,
    OZ_TEAMS: TEAM,
    OZ_SUBJECT: 'admin',
    OZ_AWS_SESSION_TAGS: method === 'tags' ? 'sub' : 'teams',
    OZ_SUBJECT_CLAIMS: method === 'tags' ? 'teams,sub' : 'sub',
    OZ_PREPARE_DIR: join(dir, 'prepared'),
  });
}

/** The exports of `eval "$(oz federate prepare --aws-role-arn ARN)"`, read back from sh. */
async function prepared(env: Record<string, string>, roleArn: string): Promise<Record<string, string>> {
  const r = await run('/bin/sh', ['-c', `eval "$("${OZ_BIN}" federate prepare --aws-role-arn ${roleArn})" || exit 9; env -0`], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const all = Object.fromEntries(r.stdout.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(all).filter(([k]) => !(k in env)));
}

/** The checks `oz federate explain` fails for a token against a trust policy file, by name. */
async function failedChecks(token: string, policyFile: string): Promise<string[]> {
  const r = await oz(['federate', 'explain', token, '--aws-trust-policy', policyFile, '--json'], { env: platformEnv });
  expect(r.code).toBe(EXIT_CODES.refused);
  return (JSON.parse(r.stdout).checks as { name: string; ok: boolean }[]).filter((c) => !c.ok).map((c) => c.name);
}

const clients = {
  'the AWS SDK for JavaScript': (vars: Record<string, string>) =>
    resolveAwsJs({ provider: 'fromNodeProviderChain', env: { ...networkTrapEnv(), ...vars, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: sts.url } }),
  boto3: (vars: Record<string, string>) => resolveBoto3({ env: { ...networkTrapEnv(), ...vars, AWS_DEFAULT_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: sts.url } }),
};

describe.each(['embedded', 'remote'] as const)('with the %s issuer', (mode) => {
  describe.each(['tags', 'subject'] as const)('a role scoped by %s', (method) => {
    it.each(Object.keys(clients) as (keyof typeof clients)[])('%s is admitted for a run of the team and refused for a run of another', async (client) => {
      const role = roles[method];
      // The run of the team.
      const vars = await prepared(await sandbox(mode, method, TEAM), role.arn);
      const token = readFileSync(vars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8');
      const claims = decode(token).claims;
      if (method === 'tags') {
        expect(claims['https://aws.amazon.com/tags']).toEqual({ principal_tags: { teams: [TEAM] }, transitive_tag_keys: ['teams'] });
        expect(claims.sub).toBe('user:42');
      } else {
        expect(claims.sub).toBe(`teams:${TEAM}:environment:env-1:sub:user%3A42`);
        expect(claims.oz_sub).toBe('user:42');
        expect(claims['https://aws.amazon.com/tags']).toBeUndefined();
      }
      const before = sts.requests.length;
      const ok = await clients[client](vars);
      expect(ok.ok ? undefined : ok.error).toBeUndefined();
      const req = sts.requests.slice(before).find((q) => q.action === 'AssumeRoleWithWebIdentity' && q.ok);
      expect(req).toMatchObject({ roleArn: role.arn, roleSessionName: vars.AWS_ROLE_SESSION_NAME });
      const issued = [...sts.issued.values()].find((c) => ok.ok && c.accessKeyId === ok.value.accessKeyId);
      if (method === 'tags') expect(issued?.sessionTags).toEqual({ tags: { teams: TEAM }, transitiveTagKeys: ['teams'] });
      // oz federate explain, offline, says what STS said of the policy (it also wants the https
      // issuer AWS needs, which this loopback one is not).
      expect(await failedChecks(token, role.policyFile)).toEqual(['issuer (iss)']);

      // A run of another team.
      const otherVars = await prepared(await sandbox(mode, method, OTHER), role.arn);
      const otherToken = readFileSync(otherVars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8');
      const refused = await clients[client](otherVars);
      expect(refused.ok).toBe(false);
      expect(!refused.ok && refused.error.code).toBe('AccessDenied');
      expect(sts.requests.at(-1)).toMatchObject({ ok: false, errorCode: 'AccessDenied', roleArn: role.arn });
      const host = issuer.url.replace(/^http:\/\//, '');
      expect(await failedChecks(otherToken, role.policyFile)).toEqual([
        'issuer (iss)',
        method === 'tags' ? 'StringEquals aws:RequestTag/teams' : `StringLike ${host}:sub`,
        'sts:AssumeRoleWithWebIdentity allowed',
        ...(method === 'tags' ? ['sts:TagSession allowed'] : []),
      ]);
    }, 120_000);
  });
});
