import { OzError, quote } from '../core/errors.js';
import { validateGcpFederation } from '../sandbox/gcp.js';
import { celString, checkScope, shellWord, type Scope } from './scope.js';
import { hcl } from './hcl.js';
import { ORIGINAL_SUB_CLAIM } from '../core/claims.js';

/** The longest attribute condition a provider may have. */
const MAX_ATTRIBUTE_CONDITION = 4096;

export interface GcpSetupInput {
  issuer: string;
  scope: Scope;
  projectNumber: string;
  poolId: string;
  providerId: string;
  serviceAccount?: string;
  /** For an issuer Google cannot reach: where the admin saves `oz issuer jwks`. */
  jwkJsonPath?: string;
  /**
   * The platform formats `sub` (grant-run --subject-claims, `--team-by subject`): the identity
   * is then read from `oz_sub`, which keeps `google.subject` within GCP's 127 bytes and
   * `principal://…/subject/<id>` naming the user.
   */
  subjectFormatted?: boolean;
}

export interface GcpSetup {
  project_number: string;
  pool: { id: string; name: string };
  provider: { id: string; name: string; issuer_uri: string; audience: string; jwk_json_path?: string };
  attribute_mapping: Record<string, string>;
  attribute_condition: string;
  /** Who gets access: principals of the pool. */
  members: string[];
  service_account?: string;
}

/**
 * The pool, the OIDC provider and the principals to grant. The mapping holds only claims
 * that every token in scope carries (`sub`, `run_id`, and `environment` when it is scoped):
 * a mapping that fails to evaluate refuses the token. The condition pins the team, the
 * environment and the subjects, so that the pool admits no other run of the issuer.
 */
export function gcpSetup(input: GcpSetupInput): GcpSetup {
  checkScope(input.scope);
  const f = validateGcpFederation({
    projectNumber: input.projectNumber,
    poolId: input.poolId,
    providerId: input.providerId,
    serviceAccount: input.serviceAccount,
  });
  if (!f) throw new OzError('usage', 'give --project-number N');
  if (input.jwkJsonPath !== undefined && (input.jwkJsonPath === '' || /[\u0000-\u001f]/.test(input.jwkJsonPath))) {
    throw new OzError('usage', `invalid --jwk-json-path ${quote(input.jwkJsonPath)}`);
  }
  const { scope } = input;
  const sub = input.subjectFormatted ? `assertion.${ORIGINAL_SUB_CLAIM}` : 'assertion.sub';
  const mapping: Record<string, string> = { 'google.subject': sub, 'attribute.run_id': 'assertion.run_id' };
  if (scope.environment !== undefined) mapping['attribute.environment'] = 'assertion.environment';
  const conditions: string[] = [];
  if (scope.team !== undefined) conditions.push(`${celString(scope.team)} in assertion.teams`);
  if (scope.environment !== undefined) conditions.push(`assertion.environment == ${celString(scope.environment)}`);
  if (scope.subjects.length === 1) conditions.push(`${sub} == ${celString(scope.subjects[0] as string)}`);
  if (scope.subjects.length > 1) conditions.push(`${sub} in [${scope.subjects.map(celString).join(', ')}]`);
  const condition = conditions.join(' && ');
  if (condition.length > MAX_ATTRIBUTE_CONDITION) {
    throw new OzError('usage', `the attribute condition would be ${condition.length} characters, over GCP's ${MAX_ATTRIBUTE_CONDITION}: scope by --team rather than by so many --subject`);
  }
  const pool = `projects/${f.projectNumber}/locations/global/workloadIdentityPools/${f.poolId}`;
  const provider = `${pool}/providers/${f.providerId}`;
  const members =
    scope.subjects.length > 0
      ? scope.subjects.map((s) => `principal://iam.googleapis.com/${pool}/subject/${s}`)
      : scope.environment !== undefined
        ? [`principalSet://iam.googleapis.com/${pool}/attribute.environment/${scope.environment}`]
        : [`principalSet://iam.googleapis.com/${pool}/*`];
  return {
    project_number: f.projectNumber,
    pool: { id: f.poolId, name: pool },
    provider: {
      id: f.providerId,
      name: provider,
      issuer_uri: input.issuer,
      audience: `//iam.googleapis.com/${provider}`,
      ...(input.jwkJsonPath !== undefined ? { jwk_json_path: input.jwkJsonPath } : {}),
    },
    attribute_mapping: mapping,
    attribute_condition: condition,
    members,
    ...(f.serviceAccount !== undefined ? { service_account: f.serviceAccount } : {}),
  };
}

export function gcpSetupText(s: GcpSetup): string {
  const w = shellWord;
  const mapping = Object.entries(s.attribute_mapping)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const jwk = s.provider.jwk_json_path;
  const lines = [
    '# 1. The workload identity pool.',
    `gcloud iam workload-identity-pools create ${w(s.pool.id)} --project=${w(s.project_number)} --location=global \\`,
    `  --display-name=${w('Oz agents')}`,
    '',
    ...(jwk !== undefined
      ? ['# The issuer is not public: Google reads its keys from this file (upload it again after oz issuer rotate).', `oz issuer jwks > ${w(jwk)}`, '']
      : []),
    '# 2. The OIDC provider: who the issuer is, how claims map to attributes, which runs it admits.',
    `gcloud iam workload-identity-pools providers create-oidc ${w(s.provider.id)} --project=${w(s.project_number)} --location=global \\`,
    `  --workload-identity-pool=${w(s.pool.id)} --issuer-uri=${w(s.provider.issuer_uri)} \\`,
    `  --attribute-mapping=${w(mapping)} \\`,
    `  --attribute-condition=${w(s.attribute_condition)}${jwk !== undefined ? ` \\\n  --jwk-json-path=${w(jwk)}` : ''}`,
    '',
  ];
  if (s.service_account !== undefined) {
    lines.push('# 3. Let the runs impersonate the service account.');
    for (const m of s.members) {
      lines.push(`gcloud iam service-accounts add-iam-policy-binding ${w(s.service_account)} \\`, `  --role=roles/iam.workloadIdentityUser --member=${w(m)}`);
    }
  } else {
    lines.push('# 3. Grant roles to the runs directly, for example read-only Compute Engine access:');
    for (const m of s.members) {
      lines.push(`gcloud projects add-iam-policy-binding ${w(s.project_number)} --role=roles/compute.viewer --member=${w(m)}`);
    }
  }
  lines.push(
    '',
    `# Runs then use: oz federate prepare --gcp-project-number ${s.project_number} --gcp-pool-id ${s.pool.id} --gcp-provider-id ${s.provider.id}` +
      (s.service_account !== undefined ? ` --gcp-service-account ${s.service_account}` : ''),
    '',
  );
  return lines.join('\n');
}

export function gcpSetupTerraform(s: GcpSetup): string {
  const lines = [
    'resource "google_iam_workload_identity_pool" "oz" {',
    `  project                   = ${hcl(s.project_number)}`,
    `  workload_identity_pool_id = ${hcl(s.pool.id)}`,
    `  display_name              = ${hcl('Oz agents')}`,
    '}',
    '',
    'resource "google_iam_workload_identity_pool_provider" "oz" {',
    `  project                            = ${hcl(s.project_number)}`,
    '  workload_identity_pool_id          = google_iam_workload_identity_pool.oz.workload_identity_pool_id',
    `  workload_identity_pool_provider_id = ${hcl(s.provider.id)}`,
    `  attribute_mapping                  = ${hcl(s.attribute_mapping, 1)}`,
    `  attribute_condition                = ${hcl(s.attribute_condition)}`,
    '  oidc {',
    `    issuer_uri = ${hcl(s.provider.issuer_uri)}`,
    ...(s.provider.jwk_json_path !== undefined ? [`    jwks_json  = file(${hcl(s.provider.jwk_json_path)})`] : []),
    '  }',
    '}',
    '',
  ];
  s.members.forEach((m, i) => {
    if (s.service_account !== undefined) {
      lines.push(
        `resource "google_service_account_iam_member" "oz_${i}" {`,
        `  service_account_id = ${hcl(`projects/-/serviceAccounts/${s.service_account}`)}`,
        `  role               = ${hcl('roles/iam.workloadIdentityUser')}`,
        `  member             = ${hcl(m)}`,
        '}',
        '',
      );
    } else {
      lines.push(`# grant roles to ${hcl(m)} with google_project_iam_member`, '');
    }
  });
  return lines.join('\n');
}
