import type { Parsed } from './errors.js';
import { quote } from './errors.js';

/**
 * An http(s) URL with no fragment or credentials (and, unless `allowQuery`, no query): what
 * oz accepts for its issuer and its token endpoint. A bare `?` or `#` counts too: `new URL`
 * drops it, but it would then be signed into `iss` as a URL that differs from the text given.
 */
export function parseHttpUrl(raw: string, opts: { example: string; allowQuery?: boolean }): Parsed<URL> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, problem: `expected an http(s) URL such as ${opts.example}` };
  }
  const hasQuery = u.search !== '' || raw.includes('?');
  const hasFragment = u.hash !== '' || raw.includes('#');
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || (hasQuery && !opts.allowQuery) || hasFragment || u.username || u.password) {
    const parts = opts.allowQuery ? 'fragment or credentials' : 'query, fragment or credentials';
    return { ok: false, problem: `it must be an http(s) URL with no ${parts}` };
  }
  return { ok: true, value: u };
}

/** An issuer is an http(s) URL without query or fragment; its trailing slash is dropped. */
export function parseIssuerUrl(raw: string): Parsed<string> {
  const r = parseHttpUrl(raw, { example: 'https://issuer.example.com' });
  return r.ok ? { ok: true, value: r.value.href.replace(/\/+$/, '') } : r;
}

/** The URL as messages show it: without a query, which could carry something secret. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return quote(url);
  }
}

/**
 * Why AWS, GCP and Azure could not use this issuer, or undefined when they could: each fetches
 * the discovery document and JWKS from the issuer URL itself, over https, from the internet.
 */
export function issuerNotPublic(issuer: string): string | undefined {
  let u: URL;
  try {
    u = new URL(issuer);
  } catch {
    return 'not a URL';
  }
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const local =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    host === '::' ||
    host === '0.0.0.0' ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
    /^169\.254\./.test(host);
  if (local) return `a local address (${u.host}) that they cannot reach`;
  if (u.protocol !== 'https:') return 'plain http';
  return undefined;
}

/** The warning for an issuer that {@link issuerNotPublic} finds wanting. */
export function publicIssuerWarning(issuer: string, remedy: string): string | undefined {
  const why = issuerNotPublic(issuer);
  return why === undefined
    ? undefined
    : `oz: warning: the issuer ${issuer} is ${why}; AWS, GCP and Azure need a public https issuer to fetch its discovery document and JWKS, so they will refuse its tokens (${remedy})`;
}
