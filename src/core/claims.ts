import { OzError, quote, type Parsed } from './errors.js';

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

/** Facts of the machine, asked for only when a local default needs them. */
export interface LocalFacts {
  username(): string;
  hostname(): string;
}

export interface RunClaimSpec {
  /** The claim in identity tokens and run tokens. */
  claim: string;
  /** The run-context variable that sets it for the embedded issuer. */
  variable: string;
  /** `oz issuer grant-run`'s flag for it, and the flag's value placeholder. */
  flag: string;
  placeholder: string;
  help: string;
  /** A comma-separated list (of `list`s, e.g. team UIDs) in the variable and the flag; an array of strings in tokens. */
  list?: string;
  /** Every token has it (with the embedded issuer, from the local default). */
  required?: true;
  /** The embedded issuer's default on a bare machine; without one the claim is left out. */
  local?: (facts: LocalFacts) => string | string[];
  /** The local default as the README's table shows it. */
  localText: string;
}

/**
 * The run claims: who the run is. Each is declared here once; the run context's variables,
 * grant-run's flags, the claims tokens carry and validate, discovery's `claims_supported`,
 * `whoami` and the README's table (checked by a test) all follow from this list, in its order.
 *
 * Local defaults make oz usable on a bare machine: the identity says plainly that it is a
 * local one, so no relying party configured for real runs would mistake it for one.
 */
export const RUN_CLAIMS = [
  { claim: 'sub', variable: 'OZ_SUBJECT', flag: '--subject', placeholder: '<sub>', required: true, help: 'the user or service-account ID', local: (f) => `local:${f.username()}`, localText: '`local:<username>`' },
  { claim: 'run_id', variable: 'OZ_RUN_ID', flag: '--run-id', placeholder: '<id>', required: true, help: 'the run ID', local: (f) => `local-${f.hostname()}`, localText: '`local-<hostname>`' },
  { claim: 'email', variable: 'OZ_EMAIL', flag: '--email', placeholder: '<email>', help: "the user's email (user runs only)", localText: 'none (claim omitted)' },
  { claim: 'teams', variable: 'OZ_TEAMS', flag: '--teams', placeholder: '<teams>', list: 'team UIDs', help: 'team UIDs, comma-separated', local: () => ['local'], localText: '`["local"]`' },
  { claim: 'environment', variable: 'OZ_ENVIRONMENT_ID', flag: '--environment', placeholder: '<id>', help: 'the environment ID', local: () => 'local', localText: '`local`' },
  { claim: 'agent_name', variable: 'OZ_AGENT_NAME', flag: '--agent-name', placeholder: '<name>', help: "the skill's name", local: () => 'local', localText: '`local`' },
  { claim: 'skill_spec', variable: 'OZ_SKILL_SPEC', flag: '--skill-spec', placeholder: '<spec>', help: 'the skill, e.g. org/repo:.warp/skills/name/SKILL.md', local: () => 'local', localText: '`local`' },
  { claim: 'host', variable: 'OZ_HOST', flag: '--host', placeholder: '<host>', help: 'warp for hosted runs, the worker ID when self-hosting', local: (f) => f.hostname(), localText: 'the hostname' },
] as const satisfies readonly RunClaimSpec[];

type ClaimSpec = (typeof RUN_CLAIMS)[number];
type ClaimValue<S> = S extends { list: string } ? string[] : string;
export type RunClaimName = ClaimSpec['claim'];

/** Who the run is: the claims an identity token carries about it. Unknown ones are left out. */
export type RunClaims = { [S in ClaimSpec as S extends { required: true } ? S['claim'] : never]: ClaimValue<S> } & {
  [S in ClaimSpec as S extends { required: true } ? never : S['claim']]?: ClaimValue<S>;
};

/** The standard claims every identity token has, before the run's. */
export const STANDARD_CLAIMS = ['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti'] as const;

/** Where the identity `sub` held stays when the platform's subject format replaces it (claim-formats.ts). */
export const ORIGINAL_SUB_CLAIM = 'oz_sub';
/** The claim AWS reads session tags from, in tokens for STS when the platform asks for them. */
export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';

/** What discovery's `claims_supported` lists. */
export const CLAIMS_SUPPORTED: readonly string[] = [
  ...STANDARD_CLAIMS,
  ...RUN_CLAIMS.map((c) => c.claim).filter((c) => c !== 'sub'),
  ORIGINAL_SUB_CLAIM,
  AWS_TAGS_CLAIM,
];

export interface IdentityClaims extends RunClaims {
  iss: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

/**
 * Why a value cannot be an audience or a run claim, or undefined when it can: it must be
 * non-empty, printable, without surrounding whitespace and of bounded length. One rule for the
 * run context, grant-run, the CLI's audience and the token service, so all accept the same values.
 */
export function claimValueProblem(value: string): string | undefined {
  if (value.trim() === '') return 'it is empty';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) return 'it contains control characters';
  if (value !== value.trim()) return 'it has leading or trailing whitespace';
  if (value.length > MAX_CLAIM_LENGTH) return `it is ${value.length} characters long, more than ${MAX_CLAIM_LENGTH}`;
  return undefined;
}

/** A run claim's value from text (a variable or a flag): one string, or a comma-separated list. */
export function parseClaimValue(spec: RunClaimSpec, raw: string): Parsed<string | string[]> {
  const problem = claimValueProblem(raw);
  if (problem) return { ok: false, problem };
  if (!spec.list) return { ok: true, value: raw };
  const items = raw
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (items.length === 0) return { ok: false, problem: `nothing in it (comma-separated ${spec.list})` };
  return { ok: true, value: items };
}

/** Why a decoded claim value does not have its declared type, or undefined. */
export function claimTypeProblem(spec: RunClaimSpec, value: unknown): string | undefined {
  if (spec.list) return Array.isArray(value) && value.every((t) => typeof t === 'string') ? undefined : `"${spec.claim}" must be an array of strings`;
  return typeof value === 'string' && (value !== '' || !spec.required) ? undefined : `"${spec.claim}" must be a${spec.required ? ' non-empty' : ''} string`;
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
  /** A fresh random ID (randomUUID()), from the caller: the remote path never loads node:crypto. */
  jti: string;
}

/** The run claims that are set, in the registry's order, and nothing else of `run`. */
export function pickRunClaims(run: RunClaims): RunClaims {
  const out: Record<string, unknown> = {};
  const from = run as Record<string, unknown>;
  for (const { claim } of RUN_CLAIMS) {
    const v = from[claim];
    if (v !== undefined) out[claim] = Array.isArray(v) ? [...v] : v;
  }
  return out as RunClaims;
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
    jti: input.jti,
    ...rest,
  };
}
