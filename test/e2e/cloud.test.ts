import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { join } from 'node:path';
import { EXIT_CODES } from '../../src/core/errors.js';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';

const ISSUER = 'https://oidc.example.com/oz';
const THUMB = '08745487e891c19e3078c1f2a07e452950ef36f6';
let home: string;
let env: Record<string, string>;

beforeEach(() => {
  home = tempDir();
  // The embedded issuer signs for a run of team-a as user-42.
  env = scrubbedEnv(home, { OZ_ISSUER_URL: ISSUER, OZ_SUBJECT: 'user-42', OZ_TEAMS: 'team-a', OZ_RUN_ID: 'run-1', OZ_ENVIRONMENT_ID: 'env-1' });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

function file(name: string, value: unknown): string {
  const path = join(home, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

async function setupJson(args: string[]): Promise<Record<string, any>> {
  const r = await oz(['setup', ...args, '--format', 'json'], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

function oneLineError(stderr: string, message: RegExp): void {
  expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(stderr).toMatch(/^oz: /);
  expect(stderr).toMatch(message);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('oz setup, then oz federate explain with a token oz issues', () => {
  it('aws: the role it writes lets in the subject it names and refuses another (exit 9)', async () => {
    const s = await setupJson(['aws', '--subject', 'user-42', '--account-id', '123456789012', '--thumbprint', THUMB]);
    expect(s.provider).toEqual({ url: ISSUER, arn: 'arn:aws:iam::123456789012:oidc-provider/oidc.example.com/oz', client_ids: ['sts.amazonaws.com'], thumbprints: [THUMB] });
    // `aws iam get-role` output, as an administrator would save it.
    const role = file('role.json', { Role: { RoleName: 'oz-agents', Arn: s.role.arn, AssumeRolePolicyDocument: s.trust_policy } });
    const ok = await oz(['federate', 'explain', '--aws-trust-policy', role], { env });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/pass {2}StringEquals oidc.example.com\/oz:sub\n {8}expected: user-42\n/);
    expect(ok.stdout).toMatch(/Verdict: accepted \(role_arn: "arn:aws:iam::123456789012:role\/oz-agents"/);

    const other = await oz(['federate', 'explain', '--aws-trust-policy', role, '--json'], { env: { ...env, OZ_SUBJECT: 'user-7' } });
    expect(other.code).toBe(EXIT_CODES.refused);
    const doc = JSON.parse(other.stdout);
    expect(doc).toMatchObject({ relying_party: 'aws', accepted: false, token: { source: 'issued', sub: 'user-7', aud: 'sts.amazonaws.com' } });
    expect(doc.checks).toContainEqual({ group: 'statement #1 (OzRuns): Allow', name: 'StringEquals oidc.example.com/oz:sub', expected: 'user-42', actual: 'user-7', ok: false });
    oneLineError(other.stderr, /AWS STS would refuse this token: statement #1 \(OzRuns\): Allow: StringEquals oidc.example.com\/oz:sub expected user-42, got user-7/);
  });

  it('aws: --team scopes by session tags by default; a token without tags is refused, with the reason', async () => {
    const s = await setupJson(['aws', '--team', 'team-a', '--account-id', '123456789012', '--thumbprint', THUMB]);
    expect(s).toMatchObject({ team_by: 'tags', session_tags: true });
    const r = await oz(['federate', 'explain', '--aws-trust-policy', file('p.json', s.trust_policy)], { env });
    expect(r.code).toBe(9);
    expect(r.stdout).toMatch(/FAIL {2}StringEquals aws:RequestTag\/teams\n {8}expected: team-a\n {8}actual: {3}\(absent\)\n {8}note: .*--aws-session-tags/);
  });

  it('gcp: the provider it writes admits the team and refuses another', async () => {
    const s = await setupJson(['gcp', '--team', 'team-a', '--project-number', '123456789012']);
    expect(s.attribute_mapping).toEqual({ 'google.subject': 'assertion.sub', 'attribute.run_id': 'assertion.run_id' });
    expect(s.attribute_condition).toBe('"team-a" in assertion.teams');
    // What `gcloud iam workload-identity-pools providers describe --format=json` prints.
    const described = file('provider.json', {
      name: s.provider.name,
      state: 'ACTIVE',
      disabled: false,
      attributeMapping: s.attribute_mapping,
      attributeCondition: s.attribute_condition,
      oidc: { issuerUri: s.provider.issuer_uri },
    });
    const ok = await oz(['federate', 'explain', '--gcp-provider', described, '--json'], { env });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      accepted: true,
      token: { aud: `https://iam.googleapis.com/${s.provider.name}` },
      outcome: { attributes: { 'google.subject': 'user-42', 'attribute.run_id': 'run-1' } },
    });
    const other = await oz(['federate', 'explain', '--gcp-provider', described], { env: { ...env, OZ_TEAMS: 'team-b' } });
    expect(other.code).toBe(9);
    oneLineError(other.stderr, /Google's STS would refuse this token: attribute condition expected "team-a" in assertion.teams is true, got false/);
  });

  it('azure: the credential it writes matches the subject exactly', async () => {
    const s = await setupJson(['azure', '--subject', 'user-42', '--client-id', '00000000-0000-0000-0000-000000000001']);
    expect(s.federated_credential).toEqual({ name: 'oz-user-42', issuer: ISSUER, subject: 'user-42', audiences: ['api://AzureADTokenExchange'], description: 'oz runs as user-42' });
    const listed = file('creds.json', [{ ...s.federated_credential, id: 'a' }]);
    expect((await oz(['federate', 'explain', '--azure-credential', listed], { env })).code).toBe(0);
    const other = await oz(['federate', 'explain', '--azure-credential', listed], { env: { ...env, OZ_SUBJECT: 'User-42' } });
    expect(other.code).toBe(9);
    expect(other.stdout).toMatch(/note: +they differ only in case/);
  });

  it('explains a token given on stdin', async () => {
    const token = (await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env })).stdout;
    const s = await setupJson(['aws', '--subject', 'user-42', '--account-id', '123456789012', '--thumbprint', THUMB]);
    const r = await oz(['federate', 'explain', '-', '--aws-trust-policy', file('p.json', s.trust_policy), '--json'], { env: { ...env, OZ_SUBJECT: 'nobody' }, input: token });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).token).toMatchObject({ source: 'given', sub: 'user-42' });
    expect(r.stdout).not.toContain(token.trim());
  });
});

describe('bad input is a one-line usage error, never a verdict', () => {
  it.each([
    [['federate', 'explain'], /say which relying party/],
    [['federate', 'explain', '--aws-trust-policy', 'missing.json'], /cannot read --aws-trust-policy missing.json: ENOENT/],
    [['federate', 'explain', '--aws-trust-policy', '@bad', '--gcp-provider', '@bad'], /give one of --aws-trust-policy, --gcp-provider/],
    [['federate', 'explain', '--gcp-provider', '@bad'], /--gcp-provider .* is not JSON/],
    [['federate', 'explain', '--azure-credential', '@empty'], /the list is empty/],
    [['federate', 'explain', 'not-a-jwt', '--azure-credential', '@cred'], /not a JWT/],
    [['setup', 'aws', '--account-id', '123456789012', '--thumbprint', THUMB], /say whom to let in/],
    [['setup', 'aws', '--team', 't', '--account-id', '1234', '--thumbprint', THUMB], /12-digit/],
    [['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--thumbprint', 'zz'], /invalid --thumbprint/],
    [['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--issuer', 'http://oidc.example.com'], /is not https/],
    [['setup', 'gcp', '--team', 't', '--project-number', 'my-project'], /project number/],
    [['setup', 'gcp', '--team', 't'], /--project-number/],
    [['setup', 'azure', '--team', 't', '--client-id', '00000000-0000-0000-0000-000000000001'], /matches the subject exactly/],
    [['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--team-by', 'email'], /--team-by/],
    [['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--subject-claims', 'teams'], /use it with --team-by subject/],
  ])('%j', async (args, message) => {
    const paths: Record<string, string> = { '@bad': file('bad.json', '{'), '@empty': file('empty.json', '[]'), '@cred': file('cred.json', [{ issuer: ISSUER, subject: 'x', audiences: ['a'] }]) };
    const r = await oz(args.map((a) => paths[a] ?? a), { env });
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stdout).toBe('');
    oneLineError(r.stderr, message);
  });

  it('setup aws without --thumbprint connects to the issuer: a clear config error when it cannot', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise<void>((r) => server.close(() => r()));
    const r = await oz(['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--issuer', `https://127.0.0.1:${port}`], { env });
    expect(r.code).toBe(EXIT_CODES.config);
    oneLineError(r.stderr, /cannot compute the TLS thumbprint .*ECONNREFUSED.*--thumbprint HEX/);
  });

  it('setup aws computes the thumbprint of the top certificate the issuer presents', async () => {
    const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: home, stdio: 'pipe' });
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Oz E2E Root']);
    ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
    ssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2']);
    const ca = readFileSync(join(home, 'ca.pem'));
    const server = createTlsServer({ key: readFileSync(join(home, 'srv.key')), cert: Buffer.concat([readFileSync(join(home, 'srv.pem')), ca]) }, (c) => c.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const r = await oz(['setup', 'aws', '--team', 't', '--account-id', '123456789012', '--issuer', `https://127.0.0.1:${port}/oz`, '--format', 'json'], { env });
      expect(r.code).toBe(0);
      const expected = createHash('sha1').update(new X509Certificate(ca).raw).digest('hex');
      const doc = JSON.parse(r.stdout);
      expect(doc.provider.thumbprints).toEqual([expected]);
      expect(doc.provider.arn).toBe(`arn:aws:iam::123456789012:oidc-provider/127.0.0.1:${port}/oz`);
      expect(doc.thumbprint_certificate).toMatchObject({ subject: 'CN=Oz E2E Root', trusted: false });
      expect(r.stderr).toContain(`oz: thumbprint ${expected} of CN=Oz E2E Root`);
      expect(r.stderr).toMatch(/warning: this machine does not trust/);
    } finally {
      server.close();
    }
  });

  it.each([['setup'], ['setup', 'aws'], ['setup', 'gcp'], ['setup', 'azure'], ['federate', 'explain']])('%s %s --help shows examples', async (...cmd) => {
    const r = await oz([...cmd, '--help'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
  });
});

it('the README walks through setup and explain', () => {
  const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
  for (const cmd of ['oz setup aws', 'oz setup gcp', 'oz setup azure', 'oz federate explain']) expect(readme).toContain(cmd);
});
