import { RUN_CONTEXT_VARIABLES, readIssuerUrl } from '../../core/context.js';
import { OzError } from '../../core/errors.js';
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
  const tokenUrl = readTokenUrl(env);
  return { runToken, grant: decoded.value.payload, tokenUrl, timeoutMs: readTokenTimeoutMs(env), proxy: proxyFor(new URL(tokenUrl), env) };
}

export function readTokenUrl(env: Env): string {
  return readSetting(TOKEN_URL, env)?.value ?? `${readIssuerUrl(env)}${TOKEN_PATH}`;
}

export function readTokenTimeoutMs(env: Env): number {
  return readSetting(TOKEN_TIMEOUT, env).value * 1000;
}
