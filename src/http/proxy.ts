import type { Env } from '../core/settings.js';
import { OzError, quote } from '../core/errors.js';

/**
 * Which forward proxy, if any, carries a request to a URL: decided here, without loading an
 * HTTP client, because the answer picks the client (a direct request needs only node:http).
 * The rules are the ones undici's EnvHttpProxyAgent applies, which oz used before this module
 * and documents as curl's reading of the variables.
 */

export interface ProxyChoice {
  /** The proxy as `scheme://[user:password@]host[:port]`, ready for undici's ProxyAgent. */
  url: string;
  /** The variable it came from, for messages. */
  variable: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** The proxy for `target`, or undefined when the request goes direct. */
export function proxyFor(target: URL, env: Env): ProxyChoice | undefined {
  const http = firstSet(env, ['http_proxy', 'HTTP_PROXY']);
  // An https target without an https proxy goes through the http one, as it always has here.
  const chosen = target.protocol === 'https:' ? (firstSet(env, ['https_proxy', 'HTTPS_PROXY']) ?? http) : http;
  if (chosen === undefined || !shouldProxy(target, env)) return undefined;
  return { url: parseProxyUrl(chosen.value, chosen.variable), variable: chosen.variable };
}

function firstSet(env: Env, names: string[]): { variable: string; value: string } | undefined {
  for (const variable of names) {
    const value = env[variable];
    if (value) return { variable, value };
  }
  return undefined;
}

/**
 * NO_PROXY: host names (a leading `.` or `*.` is dropped; subdomains match too), `host:port`
 * entries, or `*` alone; separated by commas or white space. Unset or empty proxies every host.
 */
function shouldProxy(target: URL, env: Env): boolean {
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? '';
  if (noProxy === '*') return false;
  // `host` rather than `hostname` keeps the brackets of an IPv6 address, as NO_PROXY writes it.
  const hostname = target.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 0;
  for (const entry of noProxy.split(/[,\s]/)) {
    if (!entry) continue;
    const m = /^(.+):(\d+)$/.exec(entry);
    const host = (m ? m[1]! : entry).replace(/^\*?\./, '').toLowerCase();
    const entryPort = m ? Number.parseInt(m[2]!, 10) : 0;
    if (entryPort && entryPort !== port) continue;
    if (hostname === host || hostname.endsWith(`.${host}`)) return false;
  }
  return true;
}

/**
 * A proxy variable's value as curl reads it: no scheme means http://, a path is ignored.
 * Anything that is not then an http(s) URL with a host is a configuration error naming the
 * variable, rather than a failure deep in the HTTP client.
 */
export function parseProxyUrl(raw: string, variable: string): string {
  const value = raw.trim();
  const withScheme = /^[a-z][a-z\d+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new OzError('config', `invalid ${variable} ${quote(raw)}: expected a proxy such as http://proxy.example.com:3128`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new OzError('config', `invalid ${variable} ${quote(raw)}: oz speaks to http:// and https:// proxies only`);
  }
  if (u.hostname === '') {
    throw new OzError('config', `invalid ${variable} ${quote(raw)}: it names no host`);
  }
  const credentials = u.username ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
  return `${u.protocol}//${credentials}${u.host}`;
}
