import { OzError } from '../core/errors.js';
import { readIssuerUrl } from '../core/context.js';
import { DEFAULT_SUBJECT_CLAIMS, checkCloudIssuer, parseSubjectClaims, type Scope } from '../cloud/scope.js';
import { out, note } from './output.js';
import type { OptionsOf, SETUP_AWS, SETUP_AZURE, SETUP_GCP, SETUP_SCOPE_OPTIONS } from './spec.js';

/** Flags every `oz setup` command takes. */
export type SetupCommonOptions = OptionsOf<{ options: typeof SETUP_SCOPE_OPTIONS }>;
export type SetupAwsOptions = OptionsOf<typeof SETUP_AWS>;
export type SetupGcpOptions = OptionsOf<typeof SETUP_GCP>;
export type SetupAzureOptions = OptionsOf<typeof SETUP_AZURE>;

/** The inputs every cloud shares, read and checked once, before anything else happens. */
function common(opts: SetupCommonOptions): { issuer: string; scope: Scope; subjectClaims: string[] } {
  const issuer = readIssuerUrl(process.env, opts.issuer);
  checkCloudIssuer(issuer, opts.issuer !== undefined ? '--issuer' : 'OZ_ISSUER_URL');
  const scope: Scope = {
    subjects: opts.subject ?? [],
    ...(opts.team !== undefined ? { team: opts.team } : {}),
    ...(opts.environment !== undefined ? { environment: opts.environment } : {}),
  };
  if (opts.subjectClaims !== undefined && opts.teamBy !== 'subject') {
    throw new OzError('usage', '--subject-claims describes the subject format: use it with --team-by subject');
  }
  const subjectClaims = opts.subjectClaims !== undefined ? parseSubjectClaims(opts.subjectClaims) : DEFAULT_SUBJECT_CLAIMS;
  return { issuer, scope, subjectClaims };
}

function print(format: SetupCommonOptions['format'], json: object, text: () => string, terraform: () => string): void {
  if (format === 'json') out(`${JSON.stringify(json, null, 2)}\n`);
  else out(format === 'terraform' ? terraform() : text());
}

export async function setupAwsCommand(opts: SetupAwsOptions): Promise<void> {
  const { issuer, scope, subjectClaims } = common(opts);
  const { awsSetup, awsSetupText, awsSetupTerraform, parseThumbprint } = await import('../cloud/setup-aws.js');
  // Check every flag before connecting anywhere, so that a typo costs no round trip.
  const input = { issuer, scope, teamBy: opts.teamBy, subjectClaims, accountId: opts.accountId, roleName: opts.roleName, thumbprint: '0'.repeat(40) };
  awsSetup(input);
  let thumbprint: string;
  let certificate: { subject: string; trusted: boolean; untrusted_because?: string } | undefined;
  if (opts.thumbprint !== undefined) {
    thumbprint = parseThumbprint(opts.thumbprint);
  } else {
    const { issuerThumbprint } = await import('../cloud/thumbprint.js');
    const t = await issuerThumbprint(issuer);
    thumbprint = t.thumbprint;
    certificate = { subject: t.subject, trusted: t.trusted, ...(t.untrustedBecause ? { untrusted_because: t.untrustedBecause } : {}) };
    note(`oz: thumbprint ${thumbprint} of ${t.subject || 'the top certificate'} (${t.host}:${t.port})`);
    if (!t.trusted) note(`oz: warning: this machine does not trust the issuer's certificate chain (${t.untrustedBecause ?? 'unverified'}); AWS will check it too`);
  }
  const setup = awsSetup({ ...input, thumbprint });
  print(opts.format, certificate ? { ...setup, thumbprint_certificate: certificate } : setup, () => awsSetupText(setup), () => awsSetupTerraform(setup));
}

export async function setupGcpCommand(opts: SetupGcpOptions): Promise<void> {
  const { issuer, scope } = common(opts);
  if (opts.teamBy === 'subject') {
    note('oz: with --team-by subject the platform formats sub, so google.subject maps oz_sub (the run\'s identity); GCP conditions on the teams claim itself');
  }
  const { gcpSetup, gcpSetupText, gcpSetupTerraform } = await import('../cloud/setup-gcp.js');
  const setup = gcpSetup({
    issuer,
    scope,
    projectNumber: opts.projectNumber,
    poolId: opts.poolId,
    providerId: opts.providerId,
    subjectFormatted: opts.teamBy === 'subject',
    ...(opts.serviceAccount !== undefined ? { serviceAccount: opts.serviceAccount } : {}),
    ...(opts.jwkJsonPath !== undefined ? { jwkJsonPath: opts.jwkJsonPath } : {}),
  });
  print(opts.format, setup, () => gcpSetupText(setup), () => gcpSetupTerraform(setup));
}

export async function setupAzureCommand(opts: SetupAzureOptions): Promise<void> {
  const { issuer, scope, subjectClaims } = common(opts);
  const { azureSetup, azureSetupText, azureSetupTerraform } = await import('../cloud/setup-azure.js');
  const setup = azureSetup({
    issuer,
    scope,
    teamBy: opts.teamBy,
    subjectClaims,
    clientId: opts.clientId,
    ...(opts.tenantId !== undefined ? { tenantId: opts.tenantId } : {}),
  });
  print(opts.format, setup, () => azureSetupText(setup), () => azureSetupTerraform(setup));
}
