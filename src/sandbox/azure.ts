import { problem, type Parsed } from '../core/errors.js';

/** The audience Entra ID expects in a federated credential's token. */
export const AZURE_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** Entra ID takes RS256 only from an outside issuer (AADSTS5002738 for anything else). */
export const AZURE_SIGNING_ALG = 'RS256';

/**
 * The longest lifetime oz gives a token for Entra ID, counted from the token's backdated nbf.
 * Entra refuses an outside token that lives longer than `1.01:00:00` (AADSTS70023: a day and
 * an hour); a day leaves that hour for clock skew, and is oz's own ceiling for every token.
 */
export const AZURE_MAX_ASSERTION_SECONDS = 24 * 3600;

/** The public cloud's authority host, the SDKs' own default. */
export const AZURE_DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com/';

/**
 * Hosts that Entra's instance discovery vouches for. With any other host, MSAL (under
 * @azure/identity's WorkloadIdentityCredential) asks login.microsoftonline.com about it first
 * and gives up, unless the application disables instance discovery in code.
 */
export const MICROSOFT_AUTHORITY_HOSTS: readonly string[] = [
  'login.microsoftonline.com',
  'login.microsoft.com',
  'login.windows.net',
  'sts.windows.net',
  'login.microsoftonline.us',
  'login.usgovcloudapi.net',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
];

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
/** Authorities that name no single tenant: Entra refuses the client-credentials flow on them. */
const MULTI_TENANT = ['common', 'organizations', 'consumers'];

/** An application (client) ID: a GUID, as Entra assigns them. */
export function checkAzureClientId(raw: string): Parsed<string> {
  return GUID.test(raw) ? { ok: true, value: raw } : problem('expected the application (client) ID, a GUID such as 00000000-0000-0000-0000-000000000001');
}

/**
 * A directory (tenant): its ID (a GUID) or one of its verified domain names, such as
 * contoso.onmicrosoft.com or a custom domain; both are what Entra takes in the authority's
 * path. `common`, `organizations` and `consumers` are refused: they name no tenant, and a
 * federated credential belongs to an application in one.
 */
export function checkAzureTenantId(raw: string): Parsed<string> {
  if (GUID.test(raw)) return { ok: true, value: raw };
  if (MULTI_TENANT.includes(raw.toLowerCase())) {
    return problem(`"${raw.toLowerCase()}" names no single tenant, and workload identity federation needs the application's own: give the tenant ID (a GUID) or a verified domain`);
  }
  const labels = raw.split('.');
  const isDomain = raw.length <= 253 && labels.length >= 2 && labels.every((l) => DNS_LABEL.test(l)) && /^[A-Za-z]{2,63}$/.test(labels.at(-1)!);
  return isDomain ? { ok: true, value: raw } : problem('expected the directory (tenant) ID, a GUID, or a verified domain name such as contoso.onmicrosoft.com');
}

/**
 * An authority host: an https origin, as the SDKs read AZURE_AUTHORITY_HOST (they append the
 * tenant to it), so a path, query, fragment or credentials would end up in the wrong place.
 * The result ends with `/`, as AKS's workload identity webhook writes it.
 */
export function checkAuthorityHost(raw: string): Parsed<string> {
  const expected = 'expected an https origin with no path, such as https://login.microsoftonline.com (or login.microsoftonline.us, login.chinacloudapi.cn)';
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return problem(expected);
  }
  if (u.protocol !== 'https:') return problem(`Entra ID is reached over https only; ${expected}`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '' || raw.includes('?') || raw.includes('#') || u.username || u.password) {
    return problem(`the SDKs append the tenant to the host, so it takes no path, query, fragment or credentials; ${expected}`);
  }
  return { ok: true, value: u.href };
}

/** True for one of Microsoft's own authority hosts (which need no instance-discovery opt-out). */
export function isMicrosoftAuthorityHost(authorityHost: string): boolean {
  try {
    return MICROSOFT_AUTHORITY_HOSTS.includes(new URL(authorityHost).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/** Seconds between a token's nbf (else iat) and its exp, as Entra measures a lifetime. */
export function assertionLifetime(claims: Record<string, unknown>): number | undefined {
  const start = typeof claims.nbf === 'number' ? claims.nbf : claims.iat;
  return typeof start === 'number' && typeof claims.exp === 'number' ? claims.exp - start : undefined;
}
