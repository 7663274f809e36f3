import { createHash } from 'node:crypto';
import { OzError, quote } from '../core/errors.js';
import { AZURE_AUDIENCE } from './azure-credential.js';
import { checkScope, shellWord, subjectPatterns, type Scope, type TeamBy } from './scope.js';
import { hcl } from './hcl.js';

export interface AzureSetupInput {
  issuer: string;
  scope: Scope;
  teamBy: TeamBy;
  subjectClaims: readonly string[];
  /** The application (client) ID of the app registration or managed identity. */
  clientId: string;
  tenantId?: string;
}

export interface AzureFederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
  description: string;
}

export interface AzureSetup {
  client_id: string;
  tenant_id?: string;
  /** The first credential; `federated_credentials` holds one per subject. */
  federated_credential: AzureFederatedCredential;
  federated_credentials: AzureFederatedCredential[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Entra ID's rule for a federated credential's name.
const MAX_NAME = 120;

/**
 * One federated identity credential per subject. Entra ID compares issuer and subject
 * exactly, with no wildcard, so a team can be scoped only through a subject format whose
 * every claim the scope pins (then the subject is known in full).
 */
export function azureSetup(input: AzureSetupInput): AzureSetup {
  checkScope(input.scope);
  if (!GUID.test(input.clientId)) throw new OzError('usage', `invalid --client-id ${quote(input.clientId)}: expected the application (client) ID, a GUID`);
  if (input.tenantId !== undefined && !GUID.test(input.tenantId)) throw new OzError('usage', `invalid --tenant-id ${quote(input.tenantId)}: expected the directory (tenant) ID, a GUID`);
  const { scope } = input;
  let subjects = scope.subjects;
  if (scope.team !== undefined || scope.environment !== undefined || input.teamBy === 'subject') {
    const { patterns, exact } = input.teamBy === 'subject' ? subjectPatterns(scope, input.subjectClaims) : { patterns: [], exact: false };
    if (!exact) {
      throw new OzError(
        'usage',
        'Azure matches the subject exactly, with no wildcard and no other claim: scope Azure by --subject, ' +
          'or by --team-by subject with --subject-claims whose every claim the scope pins (e.g. --subject-claims teams,sub with --team and --subject)',
      );
    }
    subjects = patterns;
  }
  const credentials = subjects.map((subject) => ({
    name: credentialName(subject),
    issuer: input.issuer,
    subject,
    audiences: [AZURE_AUDIENCE],
    description: `oz runs as ${subject}`.slice(0, 600),
  }));
  return {
    client_id: input.clientId,
    ...(input.tenantId !== undefined ? { tenant_id: input.tenantId } : {}),
    federated_credential: credentials[0] as AzureFederatedCredential,
    federated_credentials: credentials,
  };
}

/** `oz-<subject>` in the characters Entra ID allows, with a hash when anything had to change. */
function credentialName(subject: string): string {
  const plain = `oz-${subject}`;
  if (/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(plain) && plain.length <= MAX_NAME) return plain;
  const hash = createHash('sha256').update(subject).digest('hex').slice(0, 12);
  return `oz-${subject.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, MAX_NAME - 16)}-${hash}`;
}

export function azureSetupText(s: AzureSetup): string {
  const lines = ['# The federated identity credential(s): Entra ID trusts tokens from the issuer for exactly this subject.'];
  for (const c of s.federated_credentials) {
    const { description: _d, ...params } = c;
    lines.push(`az ad app federated-credential create --id ${shellWord(s.client_id)} --parameters ${shellWord(JSON.stringify({ ...params, description: c.description }))}`);
  }
  lines.push(
    '',
    '# Then give the application roles on the resources the runs need, for example:',
    `az role assignment create --assignee ${shellWord(s.client_id)} --role Reader --scope /subscriptions/SUBSCRIPTION_ID`,
    '',
    `# Runs then use: oz federate prepare --azure-client-id ${s.client_id} --azure-tenant-id ${s.tenant_id ?? 'TENANT_ID'}`,
    '',
  );
  return lines.join('\n');
}

export function azureSetupTerraform(s: AzureSetup): string {
  return s.federated_credentials
    .map((c, i) =>
      [
        `resource "azuread_application_federated_identity_credential" "oz_${i}" {`,
        // The provider wants the application's object ID, which is not its client ID.
        `  application_id = ${hcl('/applications/OBJECT_ID')} # azuread_application.<name>.id, or az ad app show --id ${s.client_id} --query id`,
        `  display_name   = ${hcl(c.name)}`,
        `  description    = ${hcl(c.description)}`,
        `  audiences      = ${hcl(c.audiences)}`,
        `  issuer         = ${hcl(c.issuer)}`,
        `  subject        = ${hcl(c.subject)}`,
        '}',
        '',
      ].join('\n'),
    )
    .join('\n');
}
