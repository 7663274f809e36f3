import { parseHttpUrl, readIssuerUrl, RUN_CONTEXT_VARIABLES, type Env } from '../context.js';
import { parseDurationSeconds } from '../duration.js';
import { OzError, quote } from '../errors.js';
import { TOKEN_PATH } from '../issuer.js';
import { decodeJwt } from '../jwt.js';
import { proxyFor, type ProxyChoice } from './proxy.js';

/**
 * The remote token source's settings, read from the environment without loading an HTTP
 * client: `whoami` and the source switch need them, and the embedded path must stay light.
 */

/** Default bound on a whole token request, retries included: well under Google's 30 s. */
export const DEFAULT_TOKEN_TIMEOUT_SECONDS = 15;
export const MAX_TOKEN_TIMEOUT_SECONDS = 120;

export interface RemoteConfig {
  runToken: string;
  /** The run token's claims, decoded but not verified: only the token service can verify them. */
  grant: Record<string, unknown>;
  tokenUrl: string;
  timeoutMs: number;
  /** The forward proxy for the token URL, or undefined for a direct request. */
  proxy: ProxyChoice | undefined;
}

/** The run token, when the platform gave the sandbox one: that switches oz to the token service. */
export function runTokenOf(env: Env): string | undefined {
  const v = env.OZ_RUN_TOKEN?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** The run-context variables set in this environment, which remote mode ignores. */
export function ignoredVariables(env: Env): string[] {
  return RUN_CONTEXT_VARIABLES.filter((v) => (env[v] ?? '') !== '');
}

export function readRemoteConfig(env: Env): RemoteConfig {
  const runToken = runTokenOf(env);
  if (runToken === undefined) throw new TypeError('readRemoteConfig needs OZ_RUN_TOKEN');
  const decoded = decodeJwt(runToken);
  if (typeof decoded === 'string') {
    throw new OzError('config', `OZ_RUN_TOKEN is not a run token: ${decoded} (the platform sets it to the output of \`oz issuer grant-run\`)`);
  }
  const tokenUrl = readTokenUrl(env);
  return { runToken, grant: decoded.payload, tokenUrl, timeoutMs: readTokenTimeoutMs(env), proxy: proxyFor(new URL(tokenUrl), env) };
}

export function readTokenUrl(env: Env): string {
  const raw = env.OZ_TOKEN_URL ?? '';
  if (raw === '') return `${readIssuerUrl(env)}${TOKEN_PATH}`;
  return parseHttpUrl(raw, 'config', 'OZ_TOKEN_URL', { example: 'https://oidc.example.com/v1/token', allowQuery: true }).href;
}

export function readTokenTimeoutMs(env: Env): number {
  const raw = env.OZ_TOKEN_TIMEOUT ?? '';
  if (raw === '') return DEFAULT_TOKEN_TIMEOUT_SECONDS * 1000;
  const r = parseDurationSeconds(raw);
  if (typeof r === 'string' || r > MAX_TOKEN_TIMEOUT_SECONDS) {
    throw new OzError(
      'config',
      `invalid OZ_TOKEN_TIMEOUT ${quote(raw)}: ${typeof r === 'string' ? r : `it is longer than ${MAX_TOKEN_TIMEOUT_SECONDS}s`} (the bound on a whole token request, e.g. 15s)`,
    );
  }
  return r * 1000;
}

/** The URL as messages show it: without a query, which could carry something secret. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url;
  }
}
