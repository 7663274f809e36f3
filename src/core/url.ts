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
