import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AWS_TAGS_CLAIM, evaluateAwsTrustPolicy, parseTrustPolicy } from '../../src/cloud/aws-policy.js';
import { evaluateGcpProvider, parseGcpProvider } from '../../src/cloud/gcp-provider.js';
import { evaluateAzureCredentials, parseFederatedCredentials } from '../../src/cloud/azure-credential.js';
import { awsSetup, awsSetupText, awsSetupTerraform, parseThumbprint } from '../../src/cloud/setup-aws.js';
import { gcpSetup, gcpSetupText, gcpSetupTerraform } from '../../src/cloud/setup-gcp.js';
import { azureSetup, azureSetupText, azureSetupTerraform } from '../../src/cloud/setup-azure.js';
import { hcl } from '../../src/cloud/hcl.js';
import { DEFAULT_SUBJECT_CLAIMS, shellWord } from '../../src/cloud/scope.js';
import { issuerThumbprint } from '../../src/cloud/thumbprint.js';
import { OzError } from '../../src/core/errors.js';
import { ISSUER, NOW, signToken } from '../helpers/cloud-tokens.js';

const THUMB = 'a'.repeat(40);
const aws = (scope: Parameters<typeof awsSetup>[0]['scope'], teamBy: 'tags' | 'subject' = 'tags', subjectClaims = DEFAULT_SUBJECT_CLAIMS) =>
  awsSetup({ issuer: ISSUER, scope, teamBy, subjectClaims, accountId: '123456789012', roleName: 'oz-agents', thumbprint: THUMB });

function awsAccepts(setup: ReturnType<typeof aws>, claims: Record<string, unknown>): boolean {
  const t = signToken(claims);
  return evaluateAwsTrustPolicy(parseTrustPolicy(JSON.stringify(setup.trust_policy), 'p'), t.decoded, { now: NOW, tokenText: t.text }).accepted;
}

const tags = (team: string, environment?: string) => ({
  [AWS_TAGS_CLAIM]: { principal_tags: { teams: [team], ...(environment ? { environment: [environment] } : {}) }, transitive_tag_keys: [] },
});

describe('oz setup aws, round trip through explain', () => {
  it('subjects: aud and sub pinned, several subjects as a list', () => {
    const s = aws({ subjects: ['user-42', 'user-7'] });
    expect(s.trust_policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'OzRuns',
          Effect: 'Allow',
          Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/oidc.example.com/oz' },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { 'oidc.example.com/oz:aud': 'sts.amazonaws.com', 'oidc.example.com/oz:sub': ['user-42', 'user-7'] } },
        },
      ],
    });
    expect(s.session_tags).toBe(false);
    expect(awsAccepts(s, {})).toBe(true);
    expect(awsAccepts(s, { sub: 'user-8' })).toBe(false);
    expect(awsAccepts(s, { aud: 'other' })).toBe(false);
  });

  it('team by session tags: TagSession allowed, accepted for the team, refused for another', () => {
    const s = aws({ subjects: [], team: 'team-a', environment: 'env-1' });
    const st = (s.trust_policy.Statement as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(st.Action).toEqual(['sts:AssumeRoleWithWebIdentity', 'sts:TagSession']);
    expect(st.Condition).toEqual({
      StringEquals: { 'oidc.example.com/oz:aud': 'sts.amazonaws.com', 'aws:RequestTag/teams': 'team-a', 'aws:RequestTag/environment': 'env-1' },
    });
    expect(awsAccepts(s, tags('team-a', 'env-1'))).toBe(true);
    expect(awsAccepts(s, tags('team-b', 'env-1'))).toBe(false);
    expect(awsAccepts(s, tags('team-a', 'env-2'))).toBe(false);
    expect(awsAccepts(s, {})).toBe(false);
  });

  it('team by subject format: StringLike on sub, no TagSession', () => {
    const s = aws({ subjects: [], team: 'team-a' }, 'subject');
    const st = (s.trust_policy.Statement as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(st.Action).toBe('sts:AssumeRoleWithWebIdentity');
    expect(st.Condition).toEqual({
      StringEquals: { 'oidc.example.com/oz:aud': 'sts.amazonaws.com' },
      StringLike: { 'oidc.example.com/oz:sub': 'teams:team-a:environment:*:sub:*' },
    });
    expect(awsAccepts(s, { sub: 'teams:team-a:environment:env-1:sub:user-42' })).toBe(true);
    expect(awsAccepts(s, { sub: 'teams:team-b:environment:env-1:sub:user-42' })).toBe(false);
    expect(awsAccepts(s, { sub: 'user-42' })).toBe(false);
  });

  it('with subject formats on, subjects alone are matched through the format too', () => {
    const s = aws({ subjects: ['user-42'] }, 'subject', ['teams', 'sub']);
    const st = (s.trust_policy.Statement as Record<string, any>[])[0]!;
    expect(st.Condition.StringLike).toEqual({ 'oidc.example.com/oz:sub': 'teams:*:sub:user-42' });
    expect(st.Condition.StringEquals).toEqual({ 'oidc.example.com/oz:aud': 'sts.amazonaws.com' });
    expect(awsAccepts(s, { sub: 'teams:team-a:sub:user-42' })).toBe(true);
    expect(awsAccepts(s, { sub: 'user-42' })).toBe(false);
  });

  it('subject format escapes : as %3A and keeps wildcards in values literal', () => {
    const s = aws({ subjects: ['a:b*'], team: 't' }, 'subject', ['teams', 'sub']);
    const like = ((s.trust_policy.Statement as Record<string, any>[])[0]!.Condition.StringLike)['oidc.example.com/oz:sub'];
    expect(like).toBe('teams:t:sub:a%3Ab${*}');
    expect(awsAccepts(s, { sub: 'teams:t:sub:a%3Ab*' })).toBe(true);
    expect(awsAccepts(s, { sub: 'teams:t:sub:a%3Abc' })).toBe(false);
  });

  it.each([
    [{ subjects: [] }, /--subject ID .* or --team UID/],
    [{ subjects: [], environment: 'e' }, /--environment alone/],
    [{ subjects: [' x'] }, /surrounding spaces/],
  ])('never aud alone: %j is a usage error', (scope, message) => {
    expect(() => aws(scope)).toThrow(message);
  });

  it('refuses a subject format that cannot scope the team, and bad account IDs and thumbprints', () => {
    expect(() => aws({ subjects: [], team: 't' }, 'subject', ['sub'])).toThrow(/must include teams/);
    expect(() => awsSetup({ issuer: ISSUER, scope: { subjects: ['u'] }, teamBy: 'tags', subjectClaims: [], accountId: '12', roleName: 'r', thumbprint: THUMB })).toThrow(/12-digit/);
    expect(parseThumbprint('AB:'.repeat(19) + 'AB')).toBe('ab'.repeat(20));
    expect(() => parseThumbprint('xyz')).toThrow(OzError);
  });

  it('text quotes every pasted value for the shell; terraform holds the same policy', () => {
    const s = aws({ subjects: ["it's $(rm -rf /)"] });
    const text = awsSetupText(s);
    expect(text).toContain(`aws iam create-open-id-connect-provider --url ${ISSUER}`);
    expect(text).toContain(`--thumbprint-list ${THUMB}`);
    const policyText = text.slice(text.indexOf("<<'OZ_TRUST_POLICY'\n") + 20, text.indexOf('\nOZ_TRUST_POLICY\n'));
    expect(JSON.parse(policyText)).toEqual(s.trust_policy);
    // The heredoc is written by a real shell, byte for byte.
    const dir = mkdtempSync(join(tmpdir(), 'oz-setup-'));
    try {
      execFileSync('sh', ['-c', text.split('aws iam create-role')[0]!.split('# 2.')[1]!.replace(/^[^\n]*\n/, '')], { cwd: dir });
      expect(JSON.parse(readFileSync(join(dir, 'oz-trust-policy.json'), 'utf8'))).toEqual(s.trust_policy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(awsSetupTerraform(s)).toContain('"oidc.example.com/oz:sub" = "it\'s $(rm -rf /)"');
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    expect(execFileSync('sh', ['-c', `printf %s ${shellWord("a'b $(x) \`y\` \\n")}`]).toString()).toBe("a'b $(x) `y` \\n");
  });
});

describe('oz setup gcp, round trip through explain', () => {
  const setup = gcpSetup({ issuer: ISSUER, scope: { subjects: [], team: 'team-a' }, projectNumber: '123456789012', poolId: 'oz-pool', providerId: 'oz-provider' });
  // What `gcloud iam workload-identity-pools providers describe --format=json` prints for it.
  const described = (s: typeof setup) =>
    JSON.stringify({ name: s.provider.name, state: 'ACTIVE', attributeMapping: s.attribute_mapping, attributeCondition: s.attribute_condition, oidc: { issuerUri: s.provider.issuer_uri } });
  const accepts = (s: typeof setup, claims: Record<string, unknown>) =>
    evaluateGcpProvider(parseGcpProvider(described(s), 'p'), signToken({ aud: `https:${s.provider.audience}`, ...claims }).decoded, { now: NOW }).accepted;

  it('maps google.subject and the run claims, and conditions on the team', () => {
    expect(setup.attribute_mapping).toEqual({ 'google.subject': 'assertion.sub', 'attribute.run_id': 'assertion.run_id' });
    expect(setup.attribute_condition).toBe('"team-a" in assertion.teams');
    expect(setup.members).toEqual(['principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/*']);
    expect(accepts(setup, {})).toBe(true);
    expect(accepts(setup, { teams: ['team-b'] })).toBe(false);
  });

  it('subjects and environment go into the condition, quoted as CEL strings', () => {
    const s = gcpSetup({ issuer: ISSUER, scope: { subjects: ['o"neil', 'user-42'], team: 'team-a', environment: 'env-1' }, projectNumber: '1', poolId: 'oz-pool', providerId: 'oz-provider' });
    expect(s.attribute_condition).toBe('"team-a" in assertion.teams && assertion.environment == "env-1" && assertion.sub in ["o\\"neil", "user-42"]');
    expect(accepts(s, {})).toBe(true);
    expect(accepts(s, { sub: 'o"neil' })).toBe(true);
    expect(accepts(s, { sub: 'user-7' })).toBe(false);
    expect(accepts(s, { environment: 'env-2' })).toBe(false);
  });

  it("refuses a condition over GCP's 4096 characters", () => {
    const subjects = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    expect(() => gcpSetup({ issuer: ISSUER, scope: { subjects }, projectNumber: '1', poolId: 'oz-pool', providerId: 'oz-provider' })).toThrow(/over GCP's 4096/);
  });

  it('prints the gcloud commands, with --jwk-json-path for an issuer that is not public', () => {
    const s = gcpSetup({ issuer: ISSUER, scope: { subjects: [], team: 'team-a' }, projectNumber: '1', poolId: 'oz-pool', providerId: 'oz-provider', serviceAccount: 'sa@p.iam.gserviceaccount.com', jwkJsonPath: 'jwks.json' });
    const text = gcpSetupText(s);
    expect(text).toContain('gcloud iam workload-identity-pools create oz-pool --project=1 --location=global');
    expect(text).toContain("--attribute-mapping=google.subject=assertion.sub,attribute.run_id=assertion.run_id");
    expect(text).toContain(`--attribute-condition='"team-a" in assertion.teams'`);
    expect(text).toContain('oz issuer jwks > jwks.json');
    expect(text).toContain('--jwk-json-path=jwks.json');
    expect(text).toContain('--role=roles/iam.workloadIdentityUser --member=');
    expect(() => gcpSetup({ ...{ issuer: ISSUER, scope: { subjects: ['u'] }, projectNumber: 'my-project', poolId: 'oz-pool', providerId: 'oz-provider' } })).toThrow(/project number/);
  });
});

describe('oz setup azure, round trip through explain', () => {
  const CLIENT = '00000000-0000-0000-0000-000000000001';
  it('one credential per subject, accepted for that subject only', () => {
    const s = azureSetup({ issuer: ISSUER, scope: { subjects: ['user-42'] }, teamBy: 'tags', subjectClaims: DEFAULT_SUBJECT_CLAIMS, clientId: CLIENT });
    expect(s.federated_credential).toMatchObject({ name: 'oz-user-42', issuer: ISSUER, subject: 'user-42', audiences: ['api://AzureADTokenExchange'] });
    // `az ad app federated-credential list` prints the stored credentials as a list.
    const listed = JSON.stringify(s.federated_credentials.map((c) => ({ ...c, id: 'x' })));
    const accepts = (claims: Record<string, unknown>) =>
      evaluateAzureCredentials(parseFederatedCredentials(listed, 'c'), signToken({ aud: 'api://AzureADTokenExchange', ...claims }).decoded, { now: NOW }).accepted;
    expect(accepts({})).toBe(true);
    expect(accepts({ sub: 'user-7' })).toBe(false);
    const text = azureSetupText(s);
    expect(text).toContain(`az ad app federated-credential create --id ${CLIENT} --parameters '{"name":"oz-user-42"`);
  });

  it('a team only through a subject format that the scope pins completely', () => {
    expect(() => azureSetup({ issuer: ISSUER, scope: { subjects: [], team: 't' }, teamBy: 'tags', subjectClaims: DEFAULT_SUBJECT_CLAIMS, clientId: CLIENT })).toThrow(/exactly/);
    const s = azureSetup({ issuer: ISSUER, scope: { subjects: ['u1'], team: 't' }, teamBy: 'subject', subjectClaims: ['teams', 'sub'], clientId: CLIENT });
    expect(s.federated_credential.subject).toBe('teams:t:sub:u1');
    expect(s.federated_credential.name).toMatch(/^oz-teams-t-sub-u1-[0-9a-f]{12}$/);
    expect(() => azureSetup({ issuer: ISSUER, scope: { subjects: ['u'] }, teamBy: 'tags', subjectClaims: [], clientId: 'nope' })).toThrow(/GUID/);
  });
});

describe('terraform', () => {
  it('HCL strings never interpolate', () => {
    expect(hcl('${aws:username} %{if x}')).toBe('"$${aws:username} %%{if x}"');
    expect(hcl({ a: ['x', 1, true] })).toBe('{\n  "a" = ["x", 1, true]\n}');
  });

  it('gcp and azure resources carry the same values as the json', () => {
    const g = gcpSetup({ issuer: ISSUER, scope: { subjects: [], team: 'team-a' }, projectNumber: '1', poolId: 'oz-pool', providerId: 'oz-provider', serviceAccount: 'sa@p.iam.gserviceaccount.com' });
    const tf = gcpSetupTerraform(g);
    expect(tf).toContain('resource "google_iam_workload_identity_pool_provider" "oz"');
    expect(tf).toContain(`attribute_condition                = ${JSON.stringify(g.attribute_condition)}`);
    expect(tf).toContain('"google.subject" = "assertion.sub"');
    expect(tf).toContain(`member             = "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/oz-pool/*"`);
    const a = azureSetup({ issuer: ISSUER, scope: { subjects: ['user-42'] }, teamBy: 'tags', subjectClaims: [], clientId: '00000000-0000-0000-0000-000000000001' });
    const atf = azureSetupTerraform(a);
    expect(atf).toContain('resource "azuread_application_federated_identity_credential" "oz_0"');
    expect(atf).toContain(`issuer         = "${ISSUER}"`);
    expect(atf).toContain('subject        = "user-42"');
    expect(atf).toContain('audiences      = ["api://AzureADTokenExchange"]');
  });
});

describe('issuerThumbprint', () => {
  it('fingerprints the top certificate a loopback TLS server presents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oz-tls-'));
    try {
      // A CA and a server certificate it signs: the chain's top is the CA.
      writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName = IP:127.0.0.1\n');
      const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Oz Test Root']);
      ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
      ssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf']);
      const ca = readFileSync(join(dir, 'ca.pem'));
      const server = createServer({ key: readFileSync(join(dir, 'srv.key')), cert: Buffer.concat([readFileSync(join(dir, 'srv.pem')), ca]) }, (s) => s.end());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      try {
        const expected = createHash('sha1').update(new X509Certificate(ca).raw).digest('hex');
        const r = await issuerThumbprint(`https://127.0.0.1:${port}/oz`);
        expect(r).toMatchObject({ thumbprint: expected, trusted: false, port });
        expect(r.subject).toContain('Oz Test Root');
        // The same chain, trusted through its CA.
        const trusted = await issuerThumbprint(`https://127.0.0.1:${port}`, { ca });
        expect(trusted.untrustedBecause).toBeUndefined();
        expect(trusted).toMatchObject({ thumbprint: expected, trusted: true });
      } finally {
        server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a clear error when nothing listens', async () => {
    const server = createServer({});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    server.close();
    await expect(issuerThumbprint(`https://127.0.0.1:${port}`)).rejects.toThrow(/cannot compute the TLS thumbprint .*ECONNREFUSED.*--thumbprint HEX/);
  });
});
