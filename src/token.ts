import { randomUUID } from 'node:crypto';
import { OzError, quote } from './errors.js';
import { formatDuration } from './duration.js';
import type { RunIdentity, RunLimits } from './context.js';

/** No identity token lives longer than a day, whatever was asked. */
export const MAX_TOKEN_SECONDS = 24 * 3600;
export const DEFAULT_TOKEN_SECONDS = 3600;
/**
 * iat and nbf are backdated by this much so that a relying party whose clock runs behind
 * still sees them in the past. The day cap counts from the backdated iat, because some
 * relying parties (GCP STS) refuse tokens whose exp - iat exceeds a day.
 */
export const BACKDATE_SECONDS = 30;
export const MAX_AUDIENCE_LENGTH = 1024;

export const IDENTITY_TOKEN_TYPE = 'JWT';

export interface IdentityClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  email?: string;
  teams: string[];
  run_id: string;
  environment: string;
  agent_name: string;
  skill_spec: string;
  host: string;
}

export type CapReason = 'requested' | 'max_run_duration' | 'deadline' | 'max_token_lifetime';

export interface Lifetime {
  seconds: number;
  cappedBy: CapReason;
}

/**
 * The requested lifetime, capped by the run's maximum duration, the time left before its
 * deadline and the one-day ceiling. A cap is not an error; a run past its deadline is.
 */
export function computeLifetime(requestedSeconds: number, limits: RunLimits, now: Date): Lifetime {
  let lifetime: Lifetime = { seconds: requestedSeconds, cappedBy: 'requested' };
  const cap = (seconds: number, reason: CapReason) => {
    if (seconds < lifetime.seconds) lifetime = { seconds, cappedBy: reason };
  };
  cap(limits.maxRunSeconds.value, 'max_run_duration');
  const deadline = limits.deadline.value;
  if (deadline !== undefined) {
    // In whole seconds as exp counts them, so a token capped by the deadline expires exactly at it.
    const left = Math.floor(deadline.getTime() / 1000) - Math.floor(now.getTime() / 1000);
    if (left < 1) {
      throw new OzError(
        'run_expired',
        `the run's deadline ${deadline.toISOString()} passed ${formatDuration(-left)} ago: no token can be issued for it (OZ_RUN_DEADLINE)`,
      );
    }
    cap(left, 'deadline');
  }
  cap(MAX_TOKEN_SECONDS - BACKDATE_SECONDS, 'max_token_lifetime');
  return lifetime;
}

/** An audience is one printable string of bounded length; anything else is refused. */
export function validateAudience(audience: string | undefined, code: 'usage' | 'config' = 'usage'): string {
  if (audience === undefined || audience.trim() === '') {
    throw new OzError(code, 'missing audience: pass --audience with the relying party\'s expected "aud" (for AWS: sts.amazonaws.com)');
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(audience)) {
    throw new OzError(code, `invalid audience ${quote(audience)}: it contains control characters`);
  }
  if (audience !== audience.trim()) {
    throw new OzError(code, `invalid audience ${quote(audience)}: it has leading or trailing whitespace`);
  }
  if (audience.length > MAX_AUDIENCE_LENGTH) {
    throw new OzError(code, `invalid audience: it is ${audience.length} characters long, more than ${MAX_AUDIENCE_LENGTH}`);
  }
  return audience;
}

export interface ClaimsInput {
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
  now: Date;
  jti?: string;
}

export function identityClaims(identity: RunIdentity, input: ClaimsInput): IdentityClaims {
  const nowS = Math.floor(input.now.getTime() / 1000);
  const claims: IdentityClaims = {
    iss: input.issuer,
    sub: identity.subject.value,
    aud: input.audience,
    iat: nowS - BACKDATE_SECONDS,
    nbf: nowS - BACKDATE_SECONDS,
    exp: nowS + input.lifetimeSeconds,
    jti: input.jti ?? randomUUID(),
    teams: identity.teams.value,
    run_id: identity.runId.value,
    environment: identity.environment.value,
    agent_name: identity.agentName.value,
    skill_spec: identity.skillSpec.value,
    host: identity.host.value,
  };
  if (identity.email.value !== undefined) claims.email = identity.email.value;
  return claims;
}
