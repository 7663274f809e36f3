import { describe, expect, it } from 'vitest';
import { thrown } from '../helpers/thrown.js';
import { OzError, type OzErrorCode } from '../../src/core/errors.js';
import {
  buildExternalAccountConfig,
  executableCommand,
  gcpAudience,
  gcpTokenAudienceClaim,
  validateGcpFederation,
  type GcpFederation,
  type GcpFederationInput,
} from '../../src/sandbox/gcp.js';


function expectOzError(f: () => unknown, code: OzErrorCode, message: string): void {
  const e = thrown(f);
  expect(e).toBeInstanceOf(OzError);
  expect((e as OzError).code).toBe(code);
  expect((e as OzError).message).toBe(message);
}

const BASE = { projectNumber: '123456789012', poolId: 'oz-pool', providerId: 'oz-provider' } as const;

const NUMBER = '--gcp-project-number (OZ_GCP_PROJECT_NUMBER)';
const POOL = '--gcp-pool-id (OZ_GCP_POOL_ID)';
const PROVIDER = '--gcp-provider-id (OZ_GCP_PROVIDER_ID)';
const ALL_THREE = `${NUMBER}, ${POOL} and ${PROVIDER}`;
const ID_RULE = 'expected 4-32 characters of a-z, 0-9 and -, not starting with gcp-';
const PROJECT_ID_RULE =
  'expected 6-30 characters of a-z, 0-9 and -, starting with a letter and not ending with -, e.g. my-project (or a domain-scoped ID such as example.com:my-project)';

describe('validateGcpFederation', () => {
  it.each<[string, GcpFederationInput]>([
    ['nothing', {}],
    ['all undefined', { projectNumber: undefined, poolId: undefined, providerId: undefined }],
    ['all empty', { projectNumber: '', poolId: '', providerId: '', serviceAccount: '', projectId: '' }],
  ])('%s: no GCP federation', (_label, input) => {
    expect(validateGcpFederation(input)).toBeUndefined();
  });

  it.each<[string, GcpFederationInput, GcpFederation]>([
    ['the three', BASE, BASE],
    [
      'with service account and project ID',
      { ...BASE, serviceAccount: 'oz-agent@my-project.iam.gserviceaccount.com', projectId: 'my-project' },
      { ...BASE, serviceAccount: 'oz-agent@my-project.iam.gserviceaccount.com', projectId: 'my-project' },
    ],
    ['empty optional fields are left out', { ...BASE, serviceAccount: '', projectId: '' }, BASE],
    ['one-digit project number', { ...BASE, projectNumber: '7' }, { ...BASE, projectNumber: '7' }],
    [
      '19-digit project number',
      { ...BASE, projectNumber: '9223372036854775807' },
      { ...BASE, projectNumber: '9223372036854775807' },
    ],
    ['4-character IDs', { ...BASE, poolId: 'abcd', providerId: '0-9a' }, { ...BASE, poolId: 'abcd', providerId: '0-9a' }],
    [
      '32-character IDs',
      { ...BASE, poolId: 'a'.repeat(32), providerId: '-'.repeat(32) },
      { ...BASE, poolId: 'a'.repeat(32), providerId: '-'.repeat(32) },
    ],
    ['gcp without the hyphen', { ...BASE, poolId: 'gcpool' }, { ...BASE, poolId: 'gcpool' }],
    [
      'Google-managed service account',
      { ...BASE, serviceAccount: '123456789012-compute@developer.gserviceaccount.com' },
      { ...BASE, serviceAccount: '123456789012-compute@developer.gserviceaccount.com' },
    ],
    [
      'service account of a domain-scoped project',
      { ...BASE, serviceAccount: 'sa@my-project.example.com.iam.gserviceaccount.com' },
      { ...BASE, serviceAccount: 'sa@my-project.example.com.iam.gserviceaccount.com' },
    ],
    ['6-character project ID', { ...BASE, projectId: 'abcdef' }, { ...BASE, projectId: 'abcdef' }],
    ['30-character project ID', { ...BASE, projectId: `a${'-'.repeat(28)}z` }, { ...BASE, projectId: `a${'-'.repeat(28)}z` }],
    [
      'domain-scoped project ID',
      { ...BASE, projectId: 'example.com:my-project' },
      { ...BASE, projectId: 'example.com:my-project' },
    ],
  ])('%s', (_label, input, expected) => {
    expect(validateGcpFederation(input)).toEqual(expected);
  });

  it.each<[string, GcpFederationInput, string]>([
    [
      'pool and provider missing',
      { projectNumber: '1' },
      `incomplete GCP federation settings: missing ${POOL} and ${PROVIDER}; set ${ALL_THREE} together, or none of them`,
    ],
    [
      'provider missing',
      { projectNumber: '1', poolId: 'pool' },
      `incomplete GCP federation settings: missing ${PROVIDER}; set ${ALL_THREE} together, or none of them`,
    ],
    [
      'project number empty',
      { projectNumber: '', poolId: 'pool', providerId: 'prov' },
      `incomplete GCP federation settings: missing ${NUMBER}; set ${ALL_THREE} together, or none of them`,
    ],
    [
      'service account alone',
      { serviceAccount: 'sa@p.iam.gserviceaccount.com' },
      `--gcp-service-account (OZ_GCP_SERVICE_ACCOUNT) needs GCP federation: set ${ALL_THREE} as well`,
    ],
    [
      'project ID and service account alone',
      { serviceAccount: 'sa@p.iam.gserviceaccount.com', projectId: 'my-project' },
      `--gcp-service-account (OZ_GCP_SERVICE_ACCOUNT) and --gcp-project-id (OZ_GCP_PROJECT_ID) need GCP federation: set ${ALL_THREE} as well`,
    ],
  ])('%s', (_label, input, message) => {
    expectOzError(() => validateGcpFederation(input), 'usage', message);
  });

  it.each<[string, string]>([
    ['0123', ''],
    ['0', ''],
    ['12345678901234567890', ''],
    ['-1', ''],
    ['1e9', ''],
    [' 123', ''],
    ['123\n', ''],
    ['１２３', ''],
    ['my-project', ', not its ID: gcloud projects describe PROJECT_ID --format="value(projectNumber)" shows it'],
  ])('refuses the project number %j', (projectNumber, hint) => {
    expectOzError(
      () => validateGcpFederation({ ...BASE, projectNumber }),
      'usage',
      `invalid GCP project number ${JSON.stringify(projectNumber)} from ${NUMBER}: expected the project's number (digits only, e.g. 123456789012)${hint}`,
    );
  });

  it.each<[string, string]>([
    ['abc', ''],
    ['a'.repeat(33), ''],
    ['Pool', ''],
    ['my_pool', ''],
    ['my.pool', ''],
    ['pool ', ''],
    ['gcp-pool', '; the prefix gcp- is reserved by Google'],
    ['projects/1/locations/global/workloadIdentityPools/p', '; give the ID alone, not the resource name'],
    ['poöl', ''],
  ])('refuses the pool ID %j', (poolId, hint) => {
    expectOzError(
      () => validateGcpFederation({ ...BASE, poolId }),
      'usage',
      `invalid GCP workload identity pool ID ${JSON.stringify(poolId)} from ${POOL}: ${ID_RULE}${hint}`,
    );
  });

  it.each<[string, string]>([
    ['abc', ''],
    ['gcp-provider', '; the prefix gcp- is reserved by Google'],
    ['oz/provider', '; give the ID alone, not the resource name'],
    ['OZ', ''],
  ])('refuses the provider ID %j', (providerId, hint) => {
    expectOzError(
      () => validateGcpFederation({ ...BASE, providerId }),
      'usage',
      `invalid GCP workload identity pool provider ID ${JSON.stringify(providerId)} from ${PROVIDER}: ${ID_RULE}${hint}`,
    );
  });

  it.each([
    'oz-agent',
    '@my-project.iam.gserviceaccount.com',
    'oz-agent@',
    'oz-agent@localhost',
    'oz agent@p.iam.gserviceaccount.com',
    'oz-agent@p.iam.gserviceaccount.com ',
    'oz-agent@p.iam.gserviceaccount.com\n',
    'oz/agent@p.iam.gserviceaccount.com',
    'oz-agent@p.iam.gserviceaccount.com/x',
    'oz-agent@p.iam.gserviceaccount.com:generateIdToken?',
    'oz%2Fagent@p.iam.gserviceaccount.com',
    'oz-agent@p..iam.gserviceaccount.com',
    'oz-agent@-p.iam.gserviceaccount.com',
    'öz@p.iam.gserviceaccount.com',
    `${'a'.repeat(65)}@p.iam.gserviceaccount.com`,
    `sa@${'a.'.repeat(130)}com`,
  ])('refuses the service account %j', (serviceAccount) => {
    const e = thrown(() => validateGcpFederation({ ...BASE, serviceAccount })) as OzError;
    expect(e).toBeInstanceOf(OzError);
    expect(e.code).toBe('usage');
    expect(e.message).toMatch(
      /^invalid GCP service account ".*" from --gcp-service-account \(OZ_GCP_SERVICE_ACCOUNT\): expected its email, e\.g\. NAME@PROJECT_ID\.iam\.gserviceaccount\.com$/,
    );
    expect(e.message).not.toMatch(/[\n\r]/);
  });

  it.each<[string, string]>([
    ['abcde', ''],
    [`a${'b'.repeat(30)}`, ''],
    ['1project', ''],
    ['my-project-', ''],
    ['My-Project', ''],
    ['my_project', ''],
    ['my project', ''],
    [':my-project', ''],
    ['example.com:', ''],
    ['123456789012', '; that looks like a project number, which goes in --gcp-project-number'],
  ])('refuses the project ID %j', (projectId, hint) => {
    expectOzError(
      () => validateGcpFederation({ ...BASE, projectId }),
      'usage',
      `invalid GCP project ID ${JSON.stringify(projectId)} from --gcp-project-id (OZ_GCP_PROJECT_ID): ${PROJECT_ID_RULE}${hint}`,
    );
  });
});

describe('gcpAudience', () => {
  it('names the provider as STS expects', () => {
    expect(gcpAudience(BASE)).toBe(
      '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider',
    );
  });
});

describe('gcpTokenAudienceClaim', () => {
  it.each<[string, string]>([
    [
      '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q',
      'https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q',
    ],
    ['https://iam.googleapis.com/projects/1', 'https://iam.googleapis.com/projects/1'],
    ['sts.amazonaws.com', 'sts.amazonaws.com'],
    ['//iam.googleapis.com.evil.example/x', '//iam.googleapis.com.evil.example/x'],
    ['//example.com/x', '//example.com/x'],
    ['', ''],
  ])('%j → %j', (audience, claim) => {
    expect(gcpTokenAudienceClaim(audience)).toBe(claim);
  });
});

describe('buildExternalAccountConfig', () => {
  const command = '/usr/local/bin/oz federate issue-token --format gcp';
  const outputFile = '/run/user/1000/oz/gcp-token.json';
  const audience =
    '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';

  it('without a service account: what gcloud create-cred-config writes, token_info_url included', () => {
    const config = buildExternalAccountConfig(BASE, { executableCommand: command, outputFile });
    expect(config).toStrictEqual({
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: { executable: { command, timeout_millis: 30000, output_file: outputFile } },
      token_info_url: 'https://sts.googleapis.com/v1/introspect',
    });
    // gcloud's key order, so that a diff against its output is empty.
    expect(Object.keys(config)).toEqual([
      'universe_domain',
      'type',
      'audience',
      'subject_token_type',
      'token_url',
      'credential_source',
      'token_info_url',
    ]);
  });

  it('with a service account: the impersonation URL instead of token_info_url', () => {
    const config = buildExternalAccountConfig(
      { ...BASE, serviceAccount: 'oz-agent@my-project.iam.gserviceaccount.com', projectId: 'my-project' },
      { executableCommand: command, outputFile, timeoutMillis: 60000 },
    );
    expect(config).toStrictEqual({
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: { executable: { command, timeout_millis: 60000, output_file: outputFile } },
      service_account_impersonation_url:
        'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/oz-agent@my-project.iam.gserviceaccount.com:generateAccessToken',
    });
  });

  it.each([5000, 120000])('accepts timeout_millis %i, the libraries’ bounds', (timeoutMillis) => {
    expect(
      (buildExternalAccountConfig(BASE, { executableCommand: command, outputFile, timeoutMillis }).credential_source as {
        executable: { timeout_millis: number };
      }).executable.timeout_millis,
    ).toBe(timeoutMillis);
  });

  it.each([4999, 120001, 0, -1, 30000.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses timeout_millis %d as a programming error',
    (timeoutMillis) => {
      expect(() => buildExternalAccountConfig(BASE, { executableCommand: command, outputFile, timeoutMillis })).toThrow(
        new TypeError(`timeoutMillis must be a whole number from 5000 to 120000, not ${timeoutMillis}`),
      );
    },
  );

  it('refuses a relative output file as a programming error', () => {
    expect(() => buildExternalAccountConfig(BASE, { executableCommand: command, outputFile: 'gcp.json' })).toThrow(
      new TypeError('outputFile must be an absolute path, not "gcp.json"'),
    );
  });
});

describe('executableCommand', () => {
  it.each<[string, string]>([
    ['/usr/local/bin/oz', '/usr/local/bin/oz federate issue-token --format gcp'],
    ['/opt/oz-1.2/bin/oz', '/opt/oz-1.2/bin/oz federate issue-token --format gcp'],
    ["/home/o'brien/oz", "/home/o'brien/oz federate issue-token --format gcp"],
    ['/usr/bin/é漢🙂', '/usr/bin/é漢🙂 federate issue-token --format gcp'],
  ])('%s', (ozPath, expected) => {
    expect(executableCommand(ozPath)).toBe(expected);
  });

  const HOW = 'install oz or link it at an absolute path without spaces, e.g. /usr/local/bin/oz';
  const SPLIT = "contains whitespace or control characters, and Google's client libraries split the command at those";
  it.each<[string, string]>([
    ['/opt/my tools/oz', SPLIT],
    ['/opt/tools/oz\t', SPLIT],
    ['/opt/tools\n/oz', SPLIT],
    ['/opt/\u00a0/oz', SPLIT],
    ['/opt/\u3000/oz', SPLIT],
    ['/opt/\u001f/oz', SPLIT],
    ['/opt/\u0085/oz', SPLIT],
    ['/opt/"x"/oz', "contains a double quote, which Google's client libraries strip from the command"],
    ['oz', "is not absolute, and Google's client libraries run the command from whatever directory they are in"],
    ['./bin/oz', "is not absolute, and Google's client libraries run the command from whatever directory they are in"],
    ['', "is not absolute, and Google's client libraries run the command from whatever directory they are in"],
  ])('refuses %j', (ozPath, why) => {
    const e = thrown(() => executableCommand(ozPath)) as OzError;
    expect(e).toBeInstanceOf(OzError);
    expect(e.code).toBe('config');
    expect(e.message).toMatch(/^cannot name oz in the GCP credential config: its path ".*" /);
    expect(e.message).toContain(`${why}; ${HOW}`);
    expect(e.message).not.toMatch(/[\n\r\t]/);
  });
});

describe('the config as google-auth-library reads it', () => {
  it.each<[string, GcpFederation]>([
    ['without a service account', BASE],
    ['with a service account', { ...BASE, serviceAccount: 'oz-agent@my-project.iam.gserviceaccount.com' }],
  ])('%s: an executable-sourced client with our audience', async (_label, federation) => {
    const { ExternalAccountClient, PluggableAuthClient } = await import('google-auth-library');
    const config = buildExternalAccountConfig(federation, {
      executableCommand: executableCommand('/usr/local/bin/oz'),
      outputFile: '/run/user/1000/oz/gcp-token.json',
    });
    const client = ExternalAccountClient.fromJSON(config as Parameters<typeof ExternalAccountClient.fromJSON>[0]);
    expect(client).toBeInstanceOf(PluggableAuthClient);
    expect(client?.getServiceAccountEmail()).toBe(federation.serviceAccount ?? null);
  });
});

describe('the file-sourced config', () => {
  it('reads the subject token as text from the file oz keeps, with the same identity fields', () => {
    const config = buildExternalAccountConfig(BASE, { tokenFile: '/run/user/1000/oz/gcp-subject-token' });
    expect(config.credential_source).toEqual({ file: '/run/user/1000/oz/gcp-subject-token', format: { type: 'text' } });
    expect(config).toMatchObject({ type: 'external_account', audience: gcpAudience(BASE), token_info_url: 'https://sts.googleapis.com/v1/introspect' });
  });

  it('refuses a relative token file as a programming error', () => {
    expect(() => buildExternalAccountConfig(BASE, { tokenFile: 'gcp-subject-token' })).toThrow(TypeError);
  });

  it('is an identity-pool client to google-auth-library, not an executable one', async () => {
    const { ExternalAccountClient, IdentityPoolClient } = await import('google-auth-library');
    const config = buildExternalAccountConfig(BASE, { tokenFile: '/run/user/1000/oz/gcp-subject-token' });
    expect(ExternalAccountClient.fromJSON(config as Parameters<typeof ExternalAccountClient.fromJSON>[0])).toBeInstanceOf(IdentityPoolClient);
  });
});

describe('service account and project ID boundaries', () => {
  // 64 + 1 + 189 = 254 characters, the most an email address may have.
  const domain = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
  const longest = `${'a'.repeat(64)}@${domain}`;

  it('takes a service account of exactly 254 characters and refuses 255', () => {
    expect(longest).toHaveLength(254);
    expect(validateGcpFederation({ ...BASE, serviceAccount: longest })).toEqual({ ...BASE, serviceAccount: longest });
    const e = thrown(() => validateGcpFederation({ ...BASE, serviceAccount: `${'a'.repeat(64)}@e${domain}` })) as OzError;
    expect(e.message).toMatch(/^invalid GCP service account /);
  });

  it.each([
    'sa@p.iam.gserviceaccount.com',
    'a@x.co',
    `${'a'.repeat(64)}@p.iam.gserviceaccount.com`,
    `sa@${'l'.repeat(63)}.iam.gserviceaccount.com`,
    'sa@p-1.example.io',
  ])('takes the service account %j', (serviceAccount) => {
    expect(validateGcpFederation({ ...BASE, serviceAccount })?.serviceAccount).toBe(serviceAccount);
  });

  it.each([`sa@${'l'.repeat(64)}.iam.gserviceaccount.com`, 'sa@p-.example.io', 'sa@p.example.c', 'sa@p.example.1om'])(
    'refuses the service account %j',
    (serviceAccount) => {
      expect(thrown(() => validateGcpFederation({ ...BASE, serviceAccount }))).toBeInstanceOf(OzError);
    },
  );

  it.each(['x.co:my-project', 'a.b.example.com:abcdef'])('takes the domain-scoped project ID %j', (projectId) => {
    expect(validateGcpFederation({ ...BASE, projectId })?.projectId).toBe(projectId);
  });
});

describe('the validated settings', () => {
  it('have no member for an optional setting that was not given', () => {
    const f = validateGcpFederation({ ...BASE, serviceAccount: undefined, projectId: '' });
    expect(f).toStrictEqual({ ...BASE });
    expect(Object.keys(f ?? {})).toEqual(['projectNumber', 'poolId', 'providerId']);
  });
});
