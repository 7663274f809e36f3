import { ISSUER_URL, RUN_CONTEXT_VARIABLES } from '../../core/context.js';
import { OzError, quote } from '../../core/errors.js';
import { parseIssuerUrl } from '../../core/url.js';
import { decodeJwt } from '../../core/jwt.js';
import { readSetting, type Env } from '../../core/settings.js';
import { TOKEN_PATH } from '../../core/wire.js';
import { RUN_TOKEN, TOKEN_TIMEOUT, TOKEN_URL } from '../settings.js';
import { proxyFor, type ProxyChoice } from '../../http/proxy.js';

export { displayUrl } from '../../core/url.js';

/**
 * The remote token source's settings, read from the environment without loading an HTTP
 * client: `whoami` and the source switch need them, and the embedded path must stay light.
 */

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
  const v = readSetting(RUN_TOKEN, env)?.value;
  return v === '' ? undefined : v;
}

/** The run-context variables set in this environment, which remote mode ignores. */
export function ignoredVariables(env: Env): string[] {
  return RUN_CONTEXT_VARIABLES.filter((v) => (env[v] ?? '') !== '');
}

export function readRemoteConfig(env: Env): RemoteConfig {
  const runToken = runTokenOf(env);
  if (runToken === undefined) throw new TypeError('readRemoteConfig needs OZ_RUN_TOKEN');
  const decoded = decodeJwt(runToken);
  if (!decoded.ok) {
    throw new OzError('config', `OZ_RUN_TOKEN is not a run token: ${decoded.problem} (the platform sets it to the output of \`oz issuer grant-run\`)`);
  }
  const tokenUrl = readTokenUrl(env, decoded.value.payload);
  return { runToken, grant: decoded.value.payload, tokenUrl, timeoutMs: readTokenTimeoutMs(env), proxy: proxyFor(new URL(tokenUrl), env) };
}

/**
 * OZ_TOKEN_URL, else OZ_ISSUER_URL's token path, else the run token's own issuer's: the
 * service that granted the run is the one that can trade its run token (the same issuer
 * `whoami` shows). The local default is left for a grant with no `iss`.
 */
export function readTokenUrl(env: Env, grant: Record<string, unknown> = {}): string {
  const explicit = readSetting(TOKEN_URL, env)?.value;
  if (explicit !== undefined) return explicit;
  const issuer = readSetting({ ...ISSUER_URL, fallback: undefined }, env)?.value;
  if (issuer !== undefined) return `${issuer}${TOKEN_PATH}`;
  if (grant.iss !== undefined) {
    const iss = typeof grant.iss === 'string' ? parseIssuerUrl(grant.iss) : { ok: false as const, problem: 'it is not a string' };
    if (!iss.ok) {
      throw new OzError(
        'config',
        `the run token's issuer ${quote(String(grant.iss))} cannot name the token service: ${iss.problem} (set OZ_TOKEN_URL or OZ_ISSUER_URL)`,
      );
    }
    return `${iss.value}${TOKEN_PATH}`;
  }
  return `${ISSUER_URL.fallback()}${TOKEN_PATH}`;
}

export function readTokenTimeoutMs(env: Env): number {
  return readSetting(TOKEN_TIMEOUT, env).value * 1000;
}
