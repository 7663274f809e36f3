import { randomUUID } from 'node:crypto';
import { signJwt } from '../core/jwt.js';
import { pickRunClaims, type RunClaims } from '../core/claims.js';
import type { SigningKey } from '../core/keys.js';
import { RUN_TOKEN_AUDIENCE, RUN_TOKEN_TYPE } from '../core/wire.js';

/**
 * Run grants: the run token that the platform mints when a run starts and puts in the
 * sandbox as OZ_RUN_TOKEN. It binds the run's claims; the token service copies them into
 * every identity token it issues for the run, so the sandbox never chooses its identity.
 *
 * A grant is signed with the issuer's own key but can never pass for an identity token:
 * its JWT `typ` is RUN_TOKEN_TYPE (identity tokens say `JWT`) and its `aud` is
 * RUN_TOKEN_AUDIENCE, which no relying party expects and the token service refuses to issue.
 */

export const DEFAULT_GRANT_SECONDS = 4 * 3600;
/**
 * A rotated key stays published for a day (RETIRED_KEY_GRACE_SECONDS), so a grant that lived
 * longer could outlive the key that signed it and stop working in the middle of a run.
 */
export const MAX_GRANT_SECONDS = 24 * 3600;

export interface GrantClaims extends RunClaims {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
}

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
