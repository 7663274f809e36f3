import { createLocalJWKSet, jwtVerify, errors as joseErrors, type JSONWebKeySet } from 'jose';
import { OzError, describeCause, quote } from '../core/errors.js';
import { decodeJwt } from '../core/jwt.js';
import { DISCOVERY_PATH } from '../core/wire.js';
import { SIGNING_ALGS } from '../core/jwt.js';

export type FetchJson = (url: string) => Promise<unknown>;

export interface VerifyOptions {
  audience?: string;
  now: Date;
  fetchJson: FetchJson;
  /** Tolerated clock difference, as relying parties allow. */
  clockToleranceSeconds?: number;
}

export interface VerifyResult {
  issuer: string;
  jwksUri: string;
  kid: string;
  alg: string;
}

function failed(what: string, cause?: unknown): OzError {
  return new OzError('verify_failed', what, { cause });
}

/**
 * Verify a token the way AWS STS and GCP STS do: discovery at the token's own issuer, the
 * issuer named there must be the token's, the key found by kid in the JWKS it points to,
 * then signature, algorithm, times and (optionally) audience. Each failure says which step.
 */
export async function verifyAsRelyingParty(token: string, opts: VerifyOptions): Promise<VerifyResult> {
  const decoded = decodeJwt(token);
  if (!decoded.ok) throw new OzError('usage', `not a JWT: ${decoded.problem}`);
  const { header, payload } = decoded.value;
  const iss = payload.iss;
  if (typeof iss !== 'string' || iss === '') throw failed('the token has no "iss" claim, so there is no issuer to verify against');
  if (typeof header.kid !== 'string') throw failed('the token header has no "kid"; AWS and GCP require one');
  if (!(SIGNING_ALGS as readonly unknown[]).includes(header.alg)) {
    throw failed(`the token is signed with ${quote(String(header.alg))}; relying parties accept only RS256 or ES256`);
  }
  const discoveryUrl = `${iss.replace(/\/+$/, '')}${DISCOVERY_PATH}`;
  let discovery: Record<string, unknown>;
  try {
    discovery = (await opts.fetchJson(discoveryUrl)) as Record<string, unknown>;
  } catch (e) {
    // No answer at all: the usual reason, on a developer's machine, is a local issuer not started.
    const unreachable = !(e instanceof SyntaxError) && !/^HTTP \d/.test(describeCause(e));
    const hint = unreachable ? `; is the issuer ${iss} up? (for oz's own issuer, \`oz issuer serve\` may not be running)` : '';
    throw failed(`cannot fetch the issuer's discovery document ${discoveryUrl}: ${describeCause(e)}${hint}`, e);
  }
  if (discovery?.issuer !== iss) {
    throw failed(`discovery at ${discoveryUrl} names issuer ${quote(String(discovery?.issuer))}, not the token's "iss" ${quote(iss)}`);
  }
  const jwksUri = discovery.jwks_uri;
  if (typeof jwksUri !== 'string') throw failed(`discovery at ${discoveryUrl} has no "jwks_uri"`);
  let jwks: JSONWebKeySet;
  try {
    jwks = (await opts.fetchJson(jwksUri)) as JSONWebKeySet;
    if (!jwks || !Array.isArray(jwks.keys)) throw new Error('no "keys" array');
  } catch (e) {
    throw failed(`cannot fetch the JWKS ${jwksUri}: ${describeCause(e)}`, e);
  }
  if (!jwks.keys.some((k) => k.kid === header.kid)) {
    throw failed(`no key with kid ${quote(header.kid)} in the JWKS at ${jwksUri} (rotated away, or signed by another issuer)`);
  }
  try {
    await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: iss,
      algorithms: [...SIGNING_ALGS],
      currentDate: opts.now,
      clockTolerance: opts.clockToleranceSeconds ?? 0,
      ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
    });
  } catch (e) {
    throw failed(verifyFailure(e, opts.audience), e);
  }
  return { issuer: iss, jwksUri, kid: header.kid, alg: String(header.alg) };
}

function showAud(aud: unknown): string {
  if (typeof aud === 'string') return quote(aud);
  if (Array.isArray(aud)) return `[${aud.map((a) => quote(String(a))).join(', ')}]`;
  return 'no "aud"';
}

function verifyFailure(e: unknown, audience: string | undefined): string {
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not match the key published for its kid';
  if (e instanceof joseErrors.JWTExpired) return `the token has expired (${e.message})`;
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return `the audience is not the one expected: expected ${quote(audience ?? '')}, the token has ${showAud(e.payload.aud)}`;
    return `claim "${e.claim}" is invalid: ${e.message}`;
  }
  return describeCause(e);
}
