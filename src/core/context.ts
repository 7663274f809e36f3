import { problem, type Parsed } from './errors.js';
import { parseDurationSeconds, formatDuration } from './duration.js';
import { parseIssuerUrl } from './url.js';
import { OzError } from './errors.js';
import { RUN_CLAIMS, parseClaimValue, MAX_TOKEN_SECONDS, BACKDATE_SECONDS, type LocalFacts, type RunClaims, type RunClaimName } from './claims.js';
import { readSetting, type Env, type Setting, type Sourced } from './settings.js';
import { SIGNING_ALGS, type SigningAlg } from './jwt.js';
import { AWS_SESSION_TAGS, SUBJECT_CLAIMS } from './claim-formats.js';

export type { Env } from './settings.js';

/**
 * The run context: what the platform puts in the sandbox's environment about the run, as the
 * embedded issuer reads it. (With a run token, the token service reads the grant instead.)
 */

export const DEFAULT_ISSUER_URL = 'http://127.0.0.1:8787';
export const DEFAULT_MAX_RUN_SECONDS = 4 * 3600;

/** Who the run is, claim by claim, with where each value came from. */
export type RunIdentity = Record<RunClaimName, Sourced<string | string[] | undefined>>;

/** How long the run may last. */
export interface RunLimits {
  /** When the run's maximum runtime ends, if the platform said. */
  deadline: Sourced<Date | undefined>;
  maxRunSeconds: Sourced<number>;
}

/** The setting behind each run claim's variable (its grant-run flag is the platform's). */
export function runClaimSetting(spec: (typeof RUN_CLAIMS)[number], local: LocalFacts): Setting<string | string[] | undefined> {
  const fallback = 'local' in spec ? () => spec.local(local) : () => undefined;
  return { variable: spec.variable, parse: (raw) => parseClaimValue(spec, raw), fallback, help: spec.help };
}

export function readRunIdentity(env: Env, local: LocalFacts): RunIdentity {
  const identity: Partial<RunIdentity> = {};
  for (const spec of RUN_CLAIMS) identity[spec.claim] = readSetting(runClaimSetting(spec, local), env) as Sourced<string | string[] | undefined>;
  return identity as RunIdentity;
}

/** The run identity as claims. */
export function runClaimsOf(identity: RunIdentity): RunClaims {
  const run: Record<string, unknown> = {};
  for (const { claim } of RUN_CLAIMS) if (identity[claim].value !== undefined) run[claim] = identity[claim].value;
  return run as RunClaims;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * RFC 3339 (with a zone) or Unix seconds. Every field is checked against its range: Date.parse
 * alone reads `2026-02-30` as March 2nd and an offset of +25:00 as a day away.
 */
export function parseDeadline(text: string): Parsed<Date> {
  const bad = problem('expected an RFC 3339 time such as 2026-01-02T15:04:05Z or Unix seconds');
  if (/^\d{1,12}(\.\d+)?$/.test(text)) return { ok: true, value: new Date(Number(text) * 1000) };
  const m = RFC3339.exec(text);
  if (!m) return bad;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    return problem(`${text} is not a date and time that exists`);
  }
  if (m[8] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return problem('its UTC offset must be less than 24h');
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? bad : { ok: true, value: new Date(ms) };
}

export const RUN_DEADLINE: Setting<Date | undefined> = {
  variable: 'OZ_RUN_DEADLINE',
  parse: parseDeadline,
  fallback: () => undefined,
  help: "when the run's maximum runtime ends: RFC 3339 or Unix seconds",
};

export const MAX_RUN_DURATION = {
  variable: 'OZ_MAX_RUN_DURATION',
  parse: parseDurationSeconds,
  fallback: () => DEFAULT_MAX_RUN_SECONDS,
  help: 'the maximum runtime of a run',
} satisfies Setting<number>;

/**
 * Every variable of the run context: what a run token replaces. The claim formats are among
 * them: in remote mode the grant fixes them, so a sandbox cannot reshape its own tokens.
 */
export const RUN_CONTEXT_VARIABLES: readonly string[] = [
  ...RUN_CLAIMS.map((c) => c.variable),
  RUN_DEADLINE.variable!,
  MAX_RUN_DURATION.variable,
  AWS_SESSION_TAGS.variable!,
  SUBJECT_CLAIMS.variable!,
];

export function readRunLimits(env: Env): RunLimits {
  return { deadline: readSetting(RUN_DEADLINE, env) as Sourced<Date | undefined>, maxRunSeconds: readSetting(MAX_RUN_DURATION, env) };
}

export const ISSUER_URL = {
  variable: 'OZ_ISSUER_URL',
  flag: '--issuer',
  parse: parseIssuerUrl,
  fallback: () => DEFAULT_ISSUER_URL,
  help: 'the issuer URL: `iss` of every token',
} satisfies Setting<string>;

export function readIssuerUrl(env: Env, flag?: string): string {
  return readSetting(ISSUER_URL, env, flag).value;
}

export function parseAlg(text: string): Parsed<SigningAlg> {
  const alg = text.toUpperCase();
  if ((SIGNING_ALGS as readonly string[]).includes(alg)) return { ok: true, value: alg as SigningAlg };
  return problem('use RS256 or ES256 (the algorithms AWS and GCP accept)');
}

/** The algorithm of a key created on first use (`oz issuer init --alg` or OZ_SIGNING_ALG). */
export const SIGNING_ALG: Setting<SigningAlg> = { variable: 'OZ_SIGNING_ALG', flag: '--alg', parse: parseAlg, help: 'the algorithm of a new signing key' };

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

/** Seconds left before the deadline; undefined when there is no deadline. */
export function secondsLeft(limits: RunLimits, now: Date): number | undefined {
  const d = limits.deadline.value;
  return d === undefined ? undefined : Math.floor((d.getTime() - now.getTime()) / 1000);
}

export function describeLimits(limits: RunLimits, now: Date): string {
  const left = secondsLeft(limits, now);
  return left === undefined
    ? `no deadline; tokens capped at the maximum run duration ${formatDuration(limits.maxRunSeconds.value)}`
    : `${formatDuration(Math.max(0, left))} left before the deadline`;
}
