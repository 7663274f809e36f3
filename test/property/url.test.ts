// Issuer and token URLs: what parseHttpUrl and normaliseIssuerUrl accept is exactly an http(s)
// URL without credentials, fragment and (for the issuer) query, and an issuer comes out in one
// canonical form.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normaliseIssuerUrl, readHttpUrl as parseHttpUrl } from '../helpers/parse.js';
import { OzError } from '../../src/core/errors.js';

const url = fc
  .tuple(
    fc.webUrl({
      validSchemes: ['http', 'https', 'HTTPS', 'ftp', 'ws', 'file'],
      withQueryParameters: true,
      withFragments: true,
      authoritySettings: { withUserInfo: true, withPort: true, withIPv4: true, withIPv6: true },
    }),
    // A bare `?` or `#`, or a trailing slash, at the end.
    fc.constantFrom('', '', '', '?', '#', '/', '//'),
  )
  .map(([u, tail]) => u + tail);

/** What the raw text has, read from the text itself rather than through the URL parser. */
function shape(raw: string) {
  const scheme = raw.slice(0, raw.indexOf(':')).toLowerCase();
  const authority = raw.slice(raw.indexOf('//') + 2).split(/[/?#]/)[0]!;
  // An empty user and password (`http://:@host`) are no credentials: the parser drops them.
  const userinfo = authority.includes('@') ? authority.slice(0, authority.lastIndexOf('@')) : '';
  return { web: scheme === 'http' || scheme === 'https', query: raw.includes('?'), fragment: raw.includes('#'), credentials: userinfo.replaceAll(':', '') !== '' };
}

function outcome(f: () => string): { ok: true; value: string } | { ok: false; error: OzError } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof OzError) return { ok: false, error: e };
    throw e;
  }
}

describe('issuer and token URLs (property)', () => {
  it('an issuer is accepted exactly when it is http(s) without query, fragment or credentials', () => {
    fc.assert(
      fc.property(url, fc.constantFrom('config', 'usage') as fc.Arbitrary<'config' | 'usage'>, (raw, code) => {
        const s = shape(raw);
        const r = outcome(() => normaliseIssuerUrl(raw, code, 'OZ_ISSUER_URL'));
        if (s.web && !s.query && !s.fragment && !s.credentials) {
          expect(r.ok, raw).toBe(true);
        } else {
          expect(r.ok, raw).toBe(false);
          if (!r.ok) {
            expect(r.error.code).toBe(code);
            expect(r.error.message).toMatch(
              /^invalid OZ_ISSUER_URL .*: (it must be an http\(s\) URL with no query, fragment or credentials|expected an http\(s\) URL such as https:\/\/issuer\.example\.com)$/s,
            );
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('an accepted issuer is canonical: no trailing slash, the same origin and path, and normalising it again changes nothing', () => {
    fc.assert(
      fc.property(url, (raw) => {
        const r = outcome(() => normaliseIssuerUrl(raw, 'config', 'OZ_ISSUER_URL'));
        if (!r.ok) return;
        const issuer = r.value;
        const given = new URL(raw);
        const parsed = new URL(issuer);
        expect(issuer.endsWith('/')).toBe(false);
        expect(issuer).not.toMatch(/[?#]/);
        expect(parsed.origin).toBe(given.origin);
        expect(parsed.pathname.replace(/\/+$/, '')).toBe(given.pathname.replace(/\/+$/, ''));
        expect(normaliseIssuerUrl(issuer, 'config', 'OZ_ISSUER_URL')).toBe(issuer);
        // Where relying parties look for its discovery document.
        const discovery = new URL(`${issuer}/.well-known/openid-configuration`);
        expect(discovery.origin).toBe(given.origin);
        expect(discovery.search + discovery.hash).toBe('');
      }),
      { numRuns: 1000 },
    );
  });

  it('a token URL may carry a query, which it keeps; fragment and credentials are still refused', () => {
    fc.assert(
      fc.property(url, (raw) => {
        const s = shape(raw);
        const r = outcome(() => parseHttpUrl(raw, 'config', 'OZ_TOKEN_URL', { example: 'https://x/v1/token', allowQuery: true }).href);
        expect(r.ok, raw).toBe(s.web && !s.fragment && !s.credentials);
        if (r.ok) expect(r.value).toBe(new URL(raw).href);
      }),
      { numRuns: 1000 },
    );
  });
});
