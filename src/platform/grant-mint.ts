import { randomUUID } from 'node:crypto';
import { signJwt } from '../core/jws.js';
import { pickRunClaims, type RunClaimName, type RunClaims } from '../core/claims.js';
import type { ClaimFormats } from '../core/claim-formats.js';
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
  /** Run claims that tokens for STS carry as session tags (grant-run --aws-session-tags). */
  aws_session_tags?: RunClaimName[];
  /** Run claims `sub` is made of (grant-run --subject-claims). */
  subject_claims?: RunClaimName[];
}

/** The claim formats a grant fixes for its run. */
export function grantFormats(grant: Pick<GrantClaims, 'aws_session_tags' | 'subject_claims'>): ClaimFormats {
  return {
    ...(grant.aws_session_tags ? { sessionTags: grant.aws_session_tags } : {}),
    ...(grant.subject_claims ? { subjectClaims: grant.subject_claims } : {}),
  };
}

export interface GrantInput {
  issuer: string;
  run: RunClaims;
  formats?: ClaimFormats;
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
    ...(input.formats?.sessionTags ? { aws_session_tags: [...input.formats.sessionTags] } : {}),
    ...(input.formats?.subjectClaims ? { subject_claims: [...input.formats.subjectClaims] } : {}),
  };
}

export function mintGrant(claims: GrantClaims, key: SigningKey): string {
  return signJwt({ alg: key.alg, kid: key.kid, typ: RUN_TOKEN_TYPE }, claims, key.privateKey);
}
