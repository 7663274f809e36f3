import { randomUUID } from 'node:crypto';
import { OzError, quote } from './errors.js';
import { formatDuration } from './duration.js';
import type { RunLimits } from './context.js';

/** No identity token lives longer than a day, whatever was asked. */
export const MAX_TOKEN_SECONDS = 24 * 3600;
export const DEFAULT_TOKEN_SECONDS = 3600;
/**
 * iat and nbf are backdated by this much so that a relying party whose clock runs behind
 * still sees them in the past. The day cap counts from the backdated iat, because some
 * relying parties (GCP STS) refuse tokens whose exp - iat exceeds a day.
 */
export const BACKDATE_SECONDS = 30;
/** Longest audience or run-claim value accepted anywhere. */
export const MAX_CLAIM_LENGTH = 1024;

export const IDENTITY_TOKEN_TYPE = 'JWT';

/** Who the run is: the claims an identity token carries about it. Unknown ones are left out. */
export interface RunClaims {
  sub: string;
  run_id: string;
  email?: string;
  teams?: string[];
  environment?: string;
  agent_name?: string;
  skill_spec?: string;
  host?: string;
}

export interface IdentityClaims extends RunClaims {
  iss: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
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

/**
 * Why a value cannot be an audience or a run claim, or undefined when it can: it must be
 * non-empty, printable, without surrounding whitespace and of bounded length. One rule for the
 * CLI, grant-run and the token service, so that all three accept and refuse the same values.
 */
export function claimValueProblem(value: string): string | undefined {
  if (value.trim() === '') return 'it is empty';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) return 'it contains control characters';
  if (value !== value.trim()) return 'it has leading or trailing whitespace';
  if (value.length > MAX_CLAIM_LENGTH) return `it is ${value.length} characters long, more than ${MAX_CLAIM_LENGTH}`;
  return undefined;
}

export function validateAudience(audience: string | undefined, code: 'usage' | 'config' = 'usage'): string {
  if (audience === undefined || audience.trim() === '') {
    throw new OzError(code, 'missing audience: pass --audience with the relying party\'s expected "aud" (for AWS: sts.amazonaws.com)');
  }
  const problem = claimValueProblem(audience);
  if (problem) throw new OzError(code, `invalid audience ${quote(audience)}: ${problem}`);
  return audience;
}

export interface ClaimsInput {
  issuer: string;
  audience: string;
  lifetimeSeconds: number;
  now: Date;
  jti?: string;
}

/** The run claims that are set, in a fixed order, and nothing else of `run`. */
export function pickRunClaims(run: RunClaims): RunClaims {
  const out: RunClaims = { sub: run.sub, run_id: run.run_id };
  if (run.email !== undefined) out.email = run.email;
  if (run.teams !== undefined) out.teams = [...run.teams];
  if (run.environment !== undefined) out.environment = run.environment;
  if (run.agent_name !== undefined) out.agent_name = run.agent_name;
  if (run.skill_spec !== undefined) out.skill_spec = run.skill_spec;
  if (run.host !== undefined) out.host = run.host;
  return out;
}

/**
 * An identity token's claims: the standard ones fresh, the run's as given. The embedded issuer
 * gives the run context; the token service gives the grant, so nothing else of it is copied.
 */
export function identityClaims(run: RunClaims, input: ClaimsInput): IdentityClaims {
  const nowS = Math.floor(input.now.getTime() / 1000);
  const { sub, ...rest } = pickRunClaims(run);
  return {
    iss: input.issuer,
    sub,
    aud: input.audience,
    iat: nowS - BACKDATE_SECONDS,
    nbf: nowS - BACKDATE_SECONDS,
    exp: nowS + input.lifetimeSeconds,
    jti: input.jti ?? randomUUID(),
    ...rest,
  };
}
