import { isAbsolute } from 'node:path';
import { OzError, quote } from '../core/errors.js';

export interface GcpFederation {
  projectNumber: string;
  poolId: string;
  providerId: string;
  serviceAccount?: string;
  projectId?: string;
}

export type GcpFederationInput = Partial<Record<keyof GcpFederation, string | undefined>>;

/** Where each setting comes from, for messages that tell the user what to set. */
const SOURCES: Record<keyof GcpFederation, string> = {
  projectNumber: '--gcp-project-number (OZ_GCP_PROJECT_NUMBER)',
  poolId: '--gcp-pool-id (OZ_GCP_POOL_ID)',
  providerId: '--gcp-provider-id (OZ_GCP_PROVIDER_ID)',
  serviceAccount: '--gcp-service-account (OZ_GCP_SERVICE_ACCOUNT)',
  projectId: '--gcp-project-id (OZ_GCP_PROJECT_ID)',
};

const REQUIRED = ['projectNumber', 'poolId', 'providerId'] as const;
const OPTIONAL = ['serviceAccount', 'projectId'] as const;

// Digits with no leading zero, at most what fits in a signed 64-bit integer's 19 digits.
const PROJECT_NUMBER = /^[1-9][0-9]{0,18}$/;
// The rule IAM's API states for both pool and provider IDs: 4-32 of [a-z0-9-], and the
// prefix gcp- is reserved for Google.
const POOL_OR_PROVIDER_ID = /^(?!gcp-)[a-z0-9-]{4,32}$/;
// An address shape whose characters are all safe in a URL path, which is where
// generateAccessToken puts it: user-managed (NAME@PROJECT.iam.gserviceaccount.com) and
// Google-managed (…@developer.gserviceaccount.com, …@appspot.gserviceaccount.com) accounts
// alike.
const SERVICE_ACCOUNT =
  /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
const MAX_EMAIL_LENGTH = 254;
// Project IDs: 6-30 of [a-z0-9-], starting with a letter, not ending with a hyphen;
// legacy domain-scoped IDs put `domain:` in front.
const PROJECT_ID =
  /^(?:(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

/**
 * The GCP settings of `prepare`, validated, or undefined when none is given. Project
 * number, pool ID and provider ID come together or not at all; the service account and
 * project ID only make sense with them. An empty string counts as not given, so that
 * `OZ_GCP_POOL_ID=` in an environment means the same as leaving it out.
 */
export function validateGcpFederation(input: GcpFederationInput): GcpFederation | undefined {
  const given = (key: keyof GcpFederation): string | undefined => {
    const value = input[key];
    return value === '' ? undefined : value;
  };

  const sources = (keys: readonly (keyof GcpFederation)[]): string => listOf(keys.map((key) => SOURCES[key]));
  const missing = REQUIRED.filter((key) => given(key) === undefined);
  if (missing.length === REQUIRED.length) {
    const stray = OPTIONAL.filter((key) => given(key) !== undefined);
    if (stray.length === 0) return undefined;
    const verb = stray.length === 1 ? 'needs' : 'need';
    throw new OzError('usage', `${sources(stray)} ${verb} GCP federation: set ${sources(REQUIRED)} as well`);
  }
  if (missing.length > 0) {
    throw new OzError(
      'usage',
      `incomplete GCP federation settings: missing ${sources(missing)}; set ${sources(REQUIRED)} together, or none of them`,
    );
  }

  const projectNumber = given('projectNumber') as string;
  const poolId = given('poolId') as string;
  const providerId = given('providerId') as string;
  const serviceAccount = given('serviceAccount');
  const projectId = given('projectId');

  if (!PROJECT_NUMBER.test(projectNumber)) {
    const hint = PROJECT_ID.test(projectNumber)
      ? ', not its ID: gcloud projects describe PROJECT_ID --format="value(projectNumber)" shows it'
      : '';
    throw invalid(
      'projectNumber',
      'GCP project number',
      projectNumber,
      `expected the project's number (digits only, e.g. 123456789012)${hint}`,
    );
  }
  checkPoolOrProviderId('poolId', 'GCP workload identity pool ID', poolId);
  checkPoolOrProviderId('providerId', 'GCP workload identity pool provider ID', providerId);
  if (
    serviceAccount !== undefined &&
    (serviceAccount.length > MAX_EMAIL_LENGTH || !SERVICE_ACCOUNT.test(serviceAccount))
  ) {
    throw invalid(
      'serviceAccount',
      'GCP service account',
      serviceAccount,
      'expected its email, e.g. NAME@PROJECT_ID.iam.gserviceaccount.com',
    );
  }
  if (projectId !== undefined && !PROJECT_ID.test(projectId)) {
    const hint = PROJECT_NUMBER.test(projectId)
      ? '; that looks like a project number, which goes in --gcp-project-number'
      : '';
    throw invalid(
      'projectId',
      'GCP project ID',
      projectId,
      'expected 6-30 characters of a-z, 0-9 and -, starting with a letter and not ending with -, ' +
        `e.g. my-project (or a domain-scoped ID such as example.com:my-project)${hint}`,
    );
  }

  return {
    projectNumber,
    poolId,
    providerId,
    ...(serviceAccount === undefined ? {} : { serviceAccount }),
    ...(projectId === undefined ? {} : { projectId }),
  };
}

function checkPoolOrProviderId(key: 'poolId' | 'providerId', what: string, value: string): void {
  if (POOL_OR_PROVIDER_ID.test(value)) return;
  const hint = value.includes('/')
    ? '; give the ID alone, not the resource name'
    : value.startsWith('gcp-')
      ? '; the prefix gcp- is reserved by Google'
      : '';
  throw invalid(key, what, value, `expected 4-32 characters of a-z, 0-9 and -, not starting with gcp-${hint}`);
}

function invalid(key: keyof GcpFederation, what: string, value: string, expected: string): OzError {
  return new OzError('usage', `invalid ${what} ${quote(value)} from ${SOURCES[key]}: ${expected}`);
}

function listOf(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** The workload identity provider's audience, as STS and the credential config name it. */
export function gcpAudience(f: GcpFederation): string {
  return (
    `//iam.googleapis.com/projects/${f.projectNumber}/locations/global` +
    `/workloadIdentityPools/${f.poolId}/providers/${f.providerId}`
  );
}

/**
 * The `aud` claim for a token meant for `audience`. A provider's default allowed audience
 * is its resource name with `https:` in front, so the scheme-relative
 * `//iam.googleapis.com/…` form that the credential config carries becomes
 * `https://iam.googleapis.com/…`; any other audience is taken as it is.
 */
export function gcpTokenAudienceClaim(audience: string): string {
  return audience.startsWith('//iam.googleapis.com/') ? `https:${audience}` : audience;
}

export const GCP_SUBJECT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const GCP_STS_TOKEN_URL = 'https://sts.googleapis.com/v1/token';
export const GCP_STS_TOKEN_INFO_URL = 'https://sts.googleapis.com/v1/introspect';
/**
 * gcloud's and the libraries' own default. The embedded issuer answers in milliseconds; a
 * remote issuer that is down has to fail within this budget (the spec asks oz to answer
 * well within it), and a longer timeout would only make a hung oz hang the caller longer.
 */
export const DEFAULT_EXECUTABLE_TIMEOUT_MILLIS = 30_000;
// The bounds google-auth-library and google-auth (Python) enforce on timeout_millis.
const MIN_EXECUTABLE_TIMEOUT_MILLIS = 5_000;
const MAX_EXECUTABLE_TIMEOUT_MILLIS = 120_000;

export interface ExternalAccountExecutableSource {
  command: string;
  timeout_millis: number;
  output_file: string;
}

/** The Google Cloud universe the STS and IAM URLs below belong to. */
export const GCP_UNIVERSE_DOMAIN = 'googleapis.com';

/** A file-sourced credential: the libraries read the subject token from `file` on every exchange. */
export interface ExternalAccountFileSource {
  file: string;
  format: { type: 'text' };
}

export interface ExternalAccountConfig {
  universe_domain: typeof GCP_UNIVERSE_DOMAIN;
  type: 'external_account';
  audience: string;
  subject_token_type: typeof GCP_SUBJECT_TOKEN_TYPE;
  token_url: typeof GCP_STS_TOKEN_URL;
  credential_source: { executable: ExternalAccountExecutableSource } | ExternalAccountFileSource;
  service_account_impersonation_url?: string;
  token_info_url?: typeof GCP_STS_TOKEN_INFO_URL;
}

export type ExternalAccountConfigOptions = ExternalAccountExecutableOptions | { /** Absolute path of the token file (the JWT as text). */ tokenFile: string };

export interface ExternalAccountExecutableOptions {
  /** From {@link executableCommand}. */
  executableCommand: string;
  /** Absolute path where the libraries cache oz's response between runs of the command. */
  outputFile: string;
  /** 5000-120000; default {@link DEFAULT_EXECUTABLE_TIMEOUT_MILLIS}. */
  timeoutMillis?: number;
}

/**
 * The executable-sourced `external_account` credential config, field for field what
 * `gcloud iam workload-identity-pools create-cred-config --executable-command …` writes:
 * with a service account, the impersonation URL; without one, `token_info_url` instead.
 * gcloud writes `universe_domain` first (googleapis.com unless told otherwise) and no quota
 * project, and so does this.
 */
export function buildExternalAccountConfig(
  f: GcpFederation,
  opts: ExternalAccountConfigOptions,
): ExternalAccountConfig {
  if ('tokenFile' in opts) {
    if (!isAbsolute(opts.tokenFile)) throw new TypeError(`tokenFile must be an absolute path, not ${quote(opts.tokenFile)}`);
    return withIdentity(f, { file: opts.tokenFile, format: { type: 'text' } });
  }
  const timeoutMillis = opts.timeoutMillis ?? DEFAULT_EXECUTABLE_TIMEOUT_MILLIS;
  if (
    !Number.isInteger(timeoutMillis) ||
    timeoutMillis < MIN_EXECUTABLE_TIMEOUT_MILLIS ||
    timeoutMillis > MAX_EXECUTABLE_TIMEOUT_MILLIS
  ) {
    throw new TypeError(
      `timeoutMillis must be a whole number from ${MIN_EXECUTABLE_TIMEOUT_MILLIS} to ${MAX_EXECUTABLE_TIMEOUT_MILLIS}, not ${timeoutMillis}`,
    );
  }
  // The libraries resolve the cache file from whatever directory their process runs in.
  if (!isAbsolute(opts.outputFile)) {
    throw new TypeError(`outputFile must be an absolute path, not ${quote(opts.outputFile)}`);
  }

  return withIdentity(f, {
    executable: {
      command: opts.executableCommand,
      timeout_millis: timeoutMillis,
      output_file: opts.outputFile,
    },
  });
}

function withIdentity(f: GcpFederation, credentialSource: ExternalAccountConfig['credential_source']): ExternalAccountConfig {
  const config: ExternalAccountConfig = {
    universe_domain: GCP_UNIVERSE_DOMAIN,
    type: 'external_account',
    audience: gcpAudience(f),
    subject_token_type: GCP_SUBJECT_TOKEN_TYPE,
    token_url: GCP_STS_TOKEN_URL,
    credential_source: credentialSource,
  };
  if (f.serviceAccount !== undefined) {
    config.service_account_impersonation_url =
      `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${f.serviceAccount}:generateAccessToken`;
  } else {
    config.token_info_url = GCP_STS_TOKEN_INFO_URL;
  }
  return config;
}

/**
 * The command line the credential config names: oz's absolute path and
 * `federate issue-token --format gcp`. Google's libraries split this string on whitespace
 * (Python's str.split(), which also splits at the control characters U+001C-U+001F and
 * U+0085) and Node's strips double quotes, with no way to escape either, so a path with
 * such characters cannot be named at all and is refused here.
 */
export function executableCommand(ozPath: string): string {
  const refuse = (why: string): never => {
    throw new OzError(
      'config',
      `cannot name oz in the GCP credential config: its path ${quote(ozPath)} ${why}; ` +
        'install oz or link it at an absolute path without spaces, e.g. /usr/local/bin/oz',
    );
  };
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(ozPath)) {
    refuse("contains whitespace or control characters, and Google's client libraries split the command at those");
  }
  if (ozPath.includes('"')) refuse("contains a double quote, which Google's client libraries strip from the command");
  if (!isAbsolute(ozPath)) {
    refuse("is not absolute, and Google's client libraries run the command from whatever directory they are in");
  }
  return `${ozPath} federate issue-token --format gcp`;
}
