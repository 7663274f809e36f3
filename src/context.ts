import { OzError, quote } from './errors.js';
import { parseDurationSeconds, formatDuration } from './duration.js';
import type { RunClaims } from './token.js';

/** The environment as oz reads it: passed in, so the core never touches process.env. */
export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_ISSUER_URL = 'http://127.0.0.1:8787';
export const DEFAULT_MAX_RUN_SECONDS = 4 * 3600;

export type Source = 'env' | 'default';

export interface Sourced<T> {
  value: T;
  source: Source;
  /** The environment variable that sets it. */
  variable: string;
}

/** Who the run is: the claims an embedded issuer signs. */
export interface RunIdentity {
  runId: Sourced<string>;
  subject: Sourced<string>;
  email: Sourced<string | undefined>;
  teams: Sourced<string[]>;
  environment: Sourced<string>;
  agentName: Sourced<string>;
  skillSpec: Sourced<string>;
  host: Sourced<string>;
}

/** How long the run may last. */
export interface RunLimits {
  /** When the run's maximum runtime ends, if the platform said. */
  deadline: Sourced<Date | undefined>;
  maxRunSeconds: Sourced<number>;
}

/** Facts of the machine, asked for only when a local default needs them. */
export interface LocalFacts {
  username(): string;
  hostname(): string;
}

/** An empty variable counts as unset: platforms often export every name, some blank. */
function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function sourced<T>(env: Env, variable: string, parse: (v: string) => T, fallback: () => T): Sourced<T> {
  const raw = envValue(env, variable);
  return raw === undefined ? { value: fallback(), source: 'default', variable } : { value: parse(raw), source: 'env', variable };
}

export function parseTeams(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/**
 * Local defaults make oz usable on a bare machine: the identity says plainly that it is a
 * local one, so no relying party configured for real runs would mistake it for one.
 */
/** Each part of the run identity: the variable that sets it and the claim it becomes. */
export const RUN_IDENTITY_FIELDS = {
  subject: { variable: 'OZ_SUBJECT', claim: 'sub' },
  email: { variable: 'OZ_EMAIL', claim: 'email' },
  teams: { variable: 'OZ_TEAMS', claim: 'teams' },
  runId: { variable: 'OZ_RUN_ID', claim: 'run_id' },
  environment: { variable: 'OZ_ENVIRONMENT_ID', claim: 'environment' },
  agentName: { variable: 'OZ_AGENT_NAME', claim: 'agent_name' },
  skillSpec: { variable: 'OZ_SKILL_SPEC', claim: 'skill_spec' },
  host: { variable: 'OZ_HOST', claim: 'host' },
} as const satisfies Record<keyof RunIdentity, { variable: string; claim: keyof RunClaims }>;

export const RUN_LIMIT_VARIABLES = ['OZ_RUN_DEADLINE', 'OZ_MAX_RUN_DURATION'] as const;

/** Every variable of the run context: what a run token replaces. */
export const RUN_CONTEXT_VARIABLES: readonly string[] = [
  ...Object.values(RUN_IDENTITY_FIELDS).map((f) => f.variable),
  ...RUN_LIMIT_VARIABLES,
];

export function readRunIdentity(env: Env, local: LocalFacts): RunIdentity {
  const id = (s: string) => s;
  const f = RUN_IDENTITY_FIELDS;
  return {
    runId: sourced(env, f.runId.variable, id, () => `local-${local.hostname()}`),
    subject: sourced(env, f.subject.variable, id, () => `local:${local.username()}`),
    email: sourced<string | undefined>(env, f.email.variable, id, () => undefined),
    teams: sourced(env, f.teams.variable, parseTeams, () => ['local']),
    environment: sourced(env, f.environment.variable, id, () => 'local'),
    agentName: sourced(env, f.agentName.variable, id, () => 'local'),
    skillSpec: sourced(env, f.skillSpec.variable, id, () => 'local'),
    host: sourced(env, f.host.variable, id, () => local.hostname()),
  };
}

/** The run identity as claims. */
export function runClaims(identity: RunIdentity): RunClaims {
  const run: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(RUN_IDENTITY_FIELDS)) run[field.claim] = identity[key as keyof RunIdentity].value;
  return run as unknown as RunClaims;
}

/** RFC 3339 (with a zone) or Unix seconds. */
export function parseDeadline(text: string): Date | undefined {
  const s = text.trim();
  if (/^\d{1,12}(\.\d+)?$/.test(s)) return new Date(Number(s) * 1000);
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

export function readRunLimits(env: Env): RunLimits {
  const deadline = sourced<Date | undefined>(
    env,
    'OZ_RUN_DEADLINE',
    (raw) => {
      const d = parseDeadline(raw);
      if (!d) {
        throw new OzError('config', `invalid OZ_RUN_DEADLINE ${quote(raw)}: expected an RFC 3339 time such as 2026-01-02T15:04:05Z or Unix seconds`);
      }
      return d;
    },
    () => undefined,
  );
  const maxRunSeconds = sourced(
    env,
    'OZ_MAX_RUN_DURATION',
    (raw) => {
      const r = parseDurationSeconds(raw);
      if (typeof r === 'string') throw new OzError('config', `invalid OZ_MAX_RUN_DURATION ${quote(raw)}: ${r}`);
      return r;
    },
    () => DEFAULT_MAX_RUN_SECONDS,
  );
  return { deadline, maxRunSeconds };
}

export function readIssuerUrl(env: Env): string {
  const raw = envValue(env, 'OZ_ISSUER_URL');
  if (raw === undefined) return DEFAULT_ISSUER_URL;
  return normaliseIssuerUrl(raw, 'config', 'OZ_ISSUER_URL');
}

/**
 * An http(s) URL with no fragment or credentials (and, unless `allowQuery`, no query): what
 * oz accepts for its issuer and its token endpoint.
 */
export function parseHttpUrl(raw: string, code: 'config' | 'usage', what: string, opts: { example: string; allowQuery?: boolean }): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new OzError(code, `invalid ${what} ${quote(raw)}: expected an http(s) URL such as ${opts.example}`);
  }
  // By href, not search and hash: those are empty for a bare `?` or `#`, which would stay in
  // the URL (an issuer of `https://x/?` is not `https://x`). Elsewhere both are percent-encoded.
  const hasQuery = u.href.includes('?');
  const hasFragment = u.href.includes('#');
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || (hasQuery && !opts.allowQuery) || hasFragment || u.username || u.password) {
    const parts = opts.allowQuery ? 'fragment or credentials' : 'query, fragment or credentials';
    throw new OzError(code, `invalid ${what} ${quote(raw)}: it must be an http(s) URL with no ${parts}`);
  }
  return u;
}

/** An issuer is an http(s) URL without query or fragment; its trailing slash is dropped. */
export function normaliseIssuerUrl(raw: string, code: 'config' | 'usage', what: string): string {
  return parseHttpUrl(raw, code, what, { example: 'https://issuer.example.com' }).href.replace(/\/+$/, '');
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
