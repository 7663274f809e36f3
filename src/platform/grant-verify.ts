import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { quote } from '../core/errors.js';
import { decodeJwt, type SigningAlg } from '../core/jwt.js';
import { BACKDATE_SECONDS, MAX_TOKEN_SECONDS, RUN_CLAIMS, claimTypeProblem } from '../core/claims.js';
import { RUN_TOKEN_AUDIENCE, RUN_TOKEN_TYPE } from '../core/wire.js';
import { parseClaimList } from '../core/claim-formats.js';
import type { GrantClaims } from './grant-mint.js';

export type { GrantClaims } from './grant-mint.js';

/**
 * The token service's side of run grants (see grant-mint.ts): is this bearer token a run
 * token this issuer granted, still valid?
 */

/** Tolerated difference between the clocks of the platform that minted a grant and the service. */
const GRANT_CLOCK_SKEW_SECONDS = 60;

export interface VerificationKey {
  key: KeyObject;
  alg: SigningAlg;
}

export interface VerifyGrantOptions {
  issuer: string;
  now: Date;
  /** A public key of the issuer's published set, by kid (active or retired). */
  keyFor(kid: string): VerificationKey | undefined;
}

export type GrantVerdict =
  | { ok: true; claims: GrantClaims }
  | { ok: false; problem: string; expired?: Date };

/**
 * Check a run token the way the token service must: its type and audience (so that an
 * identity token is refused), a signature by a key the issuer publishes (so that grants
 * survive `oz issuer rotate`), the issuer, and its expiry. Returns a verdict rather than
 * throwing: refusals are routine on the service's hot path.
 */
export function verifyGrant(token: string, opts: VerifyGrantOptions): GrantVerdict {
  const r = decodeJwt(token);
  if (!r.ok) return { ok: false, problem: `the bearer token is not a JWT: ${r.problem}` };
  const decoded = r.value;
  const { header, payload } = decoded;
  if (header.typ !== RUN_TOKEN_TYPE) {
    return {
      ok: false,
      problem: `the bearer token is not a run token: its typ is ${quote(String(header.typ), 40)}, not "${RUN_TOKEN_TYPE}" (an identity token cannot be used as a run token; use the token \`oz issuer grant-run\` printed)`,
    };
  }
  if (typeof header.kid !== 'string') return { ok: false, problem: 'the run token has no "kid"' };
  const vk = opts.keyFor(header.kid);
  if (!vk) return { ok: false, problem: `the run token is signed with a key this issuer does not publish (kid ${quote(header.kid, 60)})` };
  if (header.alg !== vk.alg) return { ok: false, problem: `the run token's alg ${quote(String(header.alg), 20)} does not match its key (${vk.alg})` };
  const signatureOk = cryptoVerify(
    'sha256',
    Buffer.from(decoded.signingInput),
    vk.alg === 'ES256' ? { key: vk.key, dsaEncoding: 'ieee-p1363' } : vk.key,
    decoded.signature,
  );
  if (!signatureOk) return { ok: false, problem: 'the run token\'s signature does not verify' };
  const shape = grantShapeProblem(payload);
  if (shape) return { ok: false, problem: `the run token is malformed: ${shape}` };
  const claims = payload as unknown as GrantClaims;
  if (claims.aud !== RUN_TOKEN_AUDIENCE) return { ok: false, problem: `the run token's audience is not "${RUN_TOKEN_AUDIENCE}"` };
  if (claims.iss !== opts.issuer) {
    return { ok: false, problem: `the run token was granted by issuer ${quote(claims.iss)}, not by this one (${opts.issuer})` };
  }
  const nowS = Math.floor(opts.now.getTime() / 1000);
  if (claims.iat > nowS + GRANT_CLOCK_SKEW_SECONDS) return { ok: false, problem: 'the run token was issued in the future' };
  if (nowS >= claims.exp) {
    const at = new Date(claims.exp * 1000);
    return { ok: false, problem: `the run's grant expired at ${at.toISOString()}: no token can be issued for this run`, expired: at };
  }
  return { ok: true, claims };
}

/** Why a payload is not a grant's claims, or undefined when it is one. */
export function grantShapeProblem(p: Record<string, unknown>): string | undefined {
  for (const name of ['iss', 'jti', 'aud'] as const) {
    if (typeof p[name] !== 'string' || p[name] === '') return `"${name}" must be a non-empty string`;
  }
  for (const name of ['iat', 'exp'] as const) {
    if (typeof p[name] !== 'number' || !Number.isFinite(p[name])) return `"${name}" must be a number`;
  }
  for (const spec of RUN_CLAIMS) {
    if (p[spec.claim] === undefined && !('required' in spec)) continue;
    const problem = claimTypeProblem(spec, p[spec.claim]);
    if (problem) return problem;
  }
  for (const name of ['aws_session_tags', 'subject_claims'] as const) {
    const v = p[name];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length === 0 || !v.every((c) => typeof c === 'string')) return `"${name}" must be a non-empty array of run claims`;
    const list = parseClaimList(v.join(','));
    if (!list.ok || list.value.length !== v.length) return `"${name}": ${list.ok ? 'a run claim holds a comma' : list.problem}`;
  }
  return undefined;
}

/**
 * Lifetime of an identity token issued under a grant: what was asked, capped at the time left
 * before the grant expires (the run's deadline) and at a day counted from the backdated iat.
 */
export function grantedLifetime(requestedSeconds: number, grant: Pick<GrantClaims, 'exp'>, now: Date): number {
  const left = grant.exp - Math.floor(now.getTime() / 1000);
  return Math.max(0, Math.min(requestedSeconds, left, MAX_TOKEN_SECONDS - BACKDATE_SECONDS));
}
