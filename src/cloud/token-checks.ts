import type { DecodedJwt } from '../core/jwt.js';
import { check, show, type Check } from './verdict.js';

/** The signature algorithm and `kid` checks that every relying party makes first. */
export function headerChecks(token: DecodedJwt, algs: readonly string[]): Check[] {
  const { alg, kid } = token.header;
  return [
    check('signature algorithm (alg)', algs.join(' or '), show(alg), typeof alg === 'string' && algs.includes(alg)),
    check(
      'key ID (kid)',
      'present, naming a key in the issuer\'s JWKS',
      show(kid),
      typeof kid === 'string' && kid !== '',
      typeof kid === 'string' && kid !== '' ? undefined : 'without a kid the relying party cannot pick the key',
    ),
  ];
}

/** `exp` in the future and `nbf`/`iat` not in the future, allowing the relying party's leeway. */
export function timeChecks(claims: Record<string, unknown>, now: Date, leewaySeconds: number): Check[] {
  const t = Math.floor(now.getTime() / 1000);
  const { exp, nbf, iat } = claims;
  const checks = [
    check(
      'not expired (exp)',
      `after ${iso(t)}`,
      typeof exp === 'number' ? iso(exp) : show(exp),
      typeof exp === 'number' && exp + leewaySeconds > t,
    ),
  ];
  for (const [name, value] of [['nbf', nbf], ['iat', iat]] as const) {
    if (value === undefined && name === 'nbf') continue;
    checks.push(
      check(
        `not in the future (${name})`,
        `at or before ${iso(t)}`,
        typeof value === 'number' ? iso(value) : show(value),
        typeof value === 'number' && value - leewaySeconds <= t,
      ),
    );
  }
  return checks;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** The `aud` claim as a list: a JWT may carry one string or several. */
export function audiences(claims: Record<string, unknown>): string[] {
  const { aud } = claims;
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/**
 * The issuer as AWS names an OIDC provider and prefixes its condition keys: the URL without
 * `https://` and without a trailing slash (`oidc.example.com/path`).
 */
export function issuerHostPath(issuer: string): string {
  return issuer.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
}
