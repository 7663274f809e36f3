import { anyText, type Setting } from '../core/settings.js';
import { durationAtMost } from '../core/duration.js';
import { parseHttpUrl } from '../core/url.js';
import { checkRoleArn } from './aws.js';
import { AZURE_DEFAULT_AUTHORITY_HOST, checkAuthorityHost, checkAzureClientId, checkAzureTenantId } from './azure.js';
import { parseTokenFileList, type TokenFileRequest } from './token-files.js';

/**
 * The sandbox's settings beyond the run context (core/context.ts): the remote token source and
 * what `prepare` sets up. Each is declared once, with its flag where a command has one.
 */

/** Default bound on a whole token request, retries included: well under Google's 30 s. */
export const DEFAULT_TOKEN_TIMEOUT_SECONDS = 15;
export const MAX_TOKEN_TIMEOUT_SECONDS = 120;

export const RUN_TOKEN: Setting<string> = {
  variable: 'OZ_RUN_TOKEN',
  // Surrounding whitespace is what a copy and paste or a file read leaves: not part of the token.
  parse: (raw) => ({ ok: true, value: raw.trim() }),
  help: 'the run token from `oz issuer grant-run`: tokens then come from the token service',
};

export const TOKEN_URL: Setting<string> = {
  variable: 'OZ_TOKEN_URL',
  parse: (raw) => {
    const r = parseHttpUrl(raw, { example: 'https://oidc.example.com/v1/token', allowQuery: true });
    return r.ok ? { ok: true, value: r.value.href } : r;
  },
  help: "the token service's endpoint (default: the issuer URL and /v1/token)",
};

export const TOKEN_TIMEOUT = {
  variable: 'OZ_TOKEN_TIMEOUT',
  parse: durationAtMost(MAX_TOKEN_TIMEOUT_SECONDS),
  fallback: () => DEFAULT_TOKEN_TIMEOUT_SECONDS,
  help: 'the bound on a whole token request, retries included, e.g. 15s',
} satisfies Setting<number>;

export const AWS_ROLE_ARN: Setting<string> = {
  variable: 'OZ_AWS_ROLE_ARN',
  flag: '--aws-role-arn',
  parse: (raw) => {
    const r = checkRoleArn(raw);
    return r.ok ? { ok: true, value: raw } : r;
  },
  help: 'AWS role to assume with web identity',
};

// The GCP settings are checked together (all three or none, and each by GCP's rules) by
// validateGcpFederation, whose messages name both the flag and the variable.
export const GCP_PROJECT_NUMBER: Setting<string> = { variable: 'OZ_GCP_PROJECT_NUMBER', flag: '--gcp-project-number', parse: anyText, help: 'GCP project number of the workload identity pool' };
export const GCP_POOL_ID: Setting<string> = { variable: 'OZ_GCP_POOL_ID', flag: '--gcp-pool-id', parse: anyText, help: 'workload identity pool ID' };
export const GCP_PROVIDER_ID: Setting<string> = { variable: 'OZ_GCP_PROVIDER_ID', flag: '--gcp-provider-id', parse: anyText, help: 'workload identity pool provider ID' };
export const GCP_SERVICE_ACCOUNT: Setting<string> = { variable: 'OZ_GCP_SERVICE_ACCOUNT', flag: '--gcp-service-account', parse: anyText, help: 'service account to impersonate' };
export const GCP_PROJECT_ID: Setting<string> = { variable: 'OZ_GCP_PROJECT_ID', flag: '--gcp-project-id', parse: anyText, help: 'project for gcloud and ADC' };

// Client and tenant are checked together (both or neither) by prepare.
export const AZURE_CLIENT_ID: Setting<string> = { variable: 'OZ_AZURE_CLIENT_ID', flag: '--azure-client-id', parse: checkAzureClientId, help: 'Entra ID application (client) ID to federate with' };
export const AZURE_TENANT_ID: Setting<string> = { variable: 'OZ_AZURE_TENANT_ID', flag: '--azure-tenant-id', parse: checkAzureTenantId, help: 'Entra ID directory (tenant) ID or verified domain' };
export const AZURE_AUTHORITY_HOST = {
  variable: 'OZ_AZURE_AUTHORITY_HOST',
  flag: '--azure-authority-host',
  parse: checkAuthorityHost,
  fallback: () => AZURE_DEFAULT_AUTHORITY_HOST,
  help: 'Entra ID authority host, an https origin (default $OZ_AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com/)',
} satisfies Setting<string>;

/** The variable's form; each `--token` flag is read on its own by prepare, with the same rules. */
export const TOKEN_FILES: Setting<TokenFileRequest[]> = {
  variable: 'OZ_TOKEN_FILES',
  flag: '--token',
  parse: parseTokenFileList,
  help: 'a token file for another relying party, NAME=AUDIENCE, exported as OZ_TOKEN_FILE_<NAME>; repeat for more (default $OZ_TOKEN_FILES, comma-separated)',
};

/** How Google's libraries get the subject token: by running oz, or by reading a file oz keeps fresh. */
export const GCP_CREDENTIAL_SOURCES = ['executable', 'file'] as const;

export const PREPARE_DIR: Setting<string> = {
  variable: 'OZ_PREPARE_DIR',
  flag: '--dir',
  parse: anyText,
  help: 'private directory for the files (default $XDG_RUNTIME_DIR/oz, else $TMPDIR/oz-<uid>)',
};

export const EXECUTABLE: Setting<string> = {
  variable: 'OZ_EXECUTABLE',
  parse: anyText,
  help: 'the path the GCP credential config runs oz by (default: the path oz was started by)',
};

/** What `prepare` reads, in the order `whoami` shows them. */
export const PREPARE_SETTINGS = [AWS_ROLE_ARN, GCP_PROJECT_NUMBER, GCP_POOL_ID, GCP_PROVIDER_ID, GCP_SERVICE_ACCOUNT, GCP_PROJECT_ID, AZURE_CLIENT_ID, AZURE_TENANT_ID, PREPARE_DIR] as const;
