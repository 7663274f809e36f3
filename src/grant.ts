import { randomUUID, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { quote } from './errors.js';
import { decodeJwt, signJwt, type SigningAlg } from './jwt.js';
import { BACKDATE_SECONDS, MAX_TOKEN_SECONDS, pickRunClaims, type RunClaims } from './token.js';

export type { RunClaims } from './token.js';
import type { SigningKey } from './keys.js';

/**
 * Run grants: the run token that the platform mints when a run starts and puts in the
 * sandbox as OZ_RUN_TOKEN. It binds the run's claims; the token service copies them into
 * every identity token it issues for the run, so the sandbox never chooses its identity.
 *
 * A grant is signed with the issuer's own key but can never pass for an identity token:
 * its JWT `typ` is RUN_TOKEN_TYPE (identity tokens say `JWT`) and its `aud` is
 * RUN_TOKEN_AUDIENCE, which no relying party expects and the token service refuses to issue.
 */

export const RUN_TOKEN_TYPE = 'oz-run+jwt';
export const RUN_TOKEN_AUDIENCE = 'oz:token-service';
export const DEFAULT_GRANT_SECONDS = 4 * 3600;
/** The problem type (RFC 9457) with which the token service refuses a grant past its deadline. */
export const RUN_EXPIRED_PROBLEM = 'urn:oz:problem:run-expired';
/**
 * A rotated key stays published for a day (RETIRED_KEY_GRACE_SECONDS), so a grant that lived
 * longer could outlive the key that signed it and stop working in the middle of a run.
 */
export const MAX_GRANT_SECONDS = 24 * 3600;
/** Tolerated difference between the clocks of the platform that minted a grant and the service. */
const GRANT_CLOCK_SKEW_SECONDS = 60;

export interface GrantClaims extends RunClaims {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
}

const OPTIONAL_STRING_CLAIMS = ['email', 'environment', 'agent_name', 'skill_spec', 'host'] as const;

export interface GrantInput {
  issuer: string;
  run: RunClaims;
  /** When the run's maximum runtime ends: the grant's `exp`. */
  deadline: Date;
  now: Date;
  jti?: string;
}

export function grantClaims(input: GrantInput): GrantClaims {
  const { run } = input;
  const { sub, ...rest } = pickRunClaims(run);
  return {
    iss: input.issuer,
    sub,
    aud: RUN_TOKEN_AUDIENCE,
    iat: Math.floor(input.now.getTime() / 1000),
    exp: Math.floor(input.deadline.getTime() / 1000),
    jti: input.jti ?? randomUUID(),
    ...rest,
  };
}

export function mintGrant(claims: GrantClaims, key: SigningKey): string {
  return signJwt({ alg: key.alg, kid: key.kid, typ: RUN_TOKEN_TYPE }, claims, key.privateKey);
}

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
  | { ok: false; reason: string; expired?: Date };

/**
 * Check a run token the way the token service must: its type and audience (so that an
 * identity token is refused), a signature by a key the issuer publishes (so that grants
 * survive `oz issuer rotate`), the issuer, and its expiry. Returns a verdict rather than
 * throwing: refusals are routine on the service's hot path.
 */
export function verifyGrant(token: string, opts: VerifyGrantOptions): GrantVerdict {
  const decoded = decodeJwt(token);
  if (typeof decoded === 'string') return { ok: false, reason: `the bearer token is not a JWT: ${decoded}` };
  const { header, payload } = decoded;
  if (header.typ !== RUN_TOKEN_TYPE) {
    return {
      ok: false,
      reason: `the bearer token is not a run token: its typ is ${quote(String(header.typ), 40)}, not "${RUN_TOKEN_TYPE}" (an identity token cannot be used as a run token; use the token \`oz issuer grant-run\` printed)`,
    };
  }
  if (typeof header.kid !== 'string') return { ok: false, reason: 'the run token has no "kid"' };
  const vk = opts.keyFor(header.kid);
  if (!vk) return { ok: false, reason: `the run token is signed with a key this issuer does not publish (kid ${quote(header.kid, 60)})` };
  if (header.alg !== vk.alg) return { ok: false, reason: `the run token's alg ${quote(String(header.alg), 20)} does not match its key (${vk.alg})` };
  const signatureOk = cryptoVerify(
    'sha256',
    Buffer.from(decoded.signingInput),
    vk.alg === 'ES256' ? { key: vk.key, dsaEncoding: 'ieee-p1363' } : vk.key,
    decoded.signature,
  );
  if (!signatureOk) return { ok: false, reason: 'the run token\'s signature does not verify' };
  const shape = grantShapeProblem(payload);
  if (shape) return { ok: false, reason: `the run token is malformed: ${shape}` };
  const claims = payload as unknown as GrantClaims;
  if (claims.aud !== RUN_TOKEN_AUDIENCE) return { ok: false, reason: `the run token's audience is not "${RUN_TOKEN_AUDIENCE}"` };
  if (claims.iss !== opts.issuer) {
    return { ok: false, reason: `the run token was granted by issuer ${quote(claims.iss)}, not by this one (${opts.issuer})` };
  }
  const nowS = Math.floor(opts.now.getTime() / 1000);
  if (claims.iat > nowS + GRANT_CLOCK_SKEW_SECONDS) return { ok: false, reason: 'the run token was issued in the future' };
  if (nowS >= claims.exp) {
    const at = new Date(claims.exp * 1000);
    return { ok: false, reason: `the run's grant expired at ${at.toISOString()}: no token can be issued for this run`, expired: at };
  }
  return { ok: true, claims };
}

/** Why a payload is not a grant's claims, or undefined when it is one. */
export function grantShapeProblem(p: Record<string, unknown>): string | undefined {
  for (const name of ['iss', 'sub', 'run_id', 'jti', 'aud'] as const) {
    if (typeof p[name] !== 'string' || p[name] === '') return `"${name}" must be a non-empty string`;
  }
  for (const name of ['iat', 'exp'] as const) {
    // False for anything but a finite number, so it refuses strings, null and JSON's 1e999.
    if (!Number.isFinite(p[name])) return `"${name}" must be a number`;
  }
  for (const name of OPTIONAL_STRING_CLAIMS) {
    if (p[name] !== undefined && typeof p[name] !== 'string') return `"${name}" must be a string`;
  }
  if (p.teams !== undefined && !(Array.isArray(p.teams) && p.teams.every((t) => typeof t === 'string'))) {
    return '"teams" must be an array of strings';
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
