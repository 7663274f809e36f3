import { problem, quote, type Parsed } from './errors.js';
import { AWS_TAGS_CLAIM, ORIGINAL_SUB_CLAIM, RUN_CLAIMS, identityClaims, type ClaimsInput, type IdentityClaims, type RunClaimName, type RunClaims } from './claims.js';
import { readSetting, type Env, type Setting } from './settings.js';

/**
 * How the platform lets relying parties that cannot read custom claims tell runs apart: AWS
 * session tags (`aws:RequestTag/teams`) and a subject format (`sub` = `teams:<uid>:…`). Both
 * are chosen by the platform: in the grant with a run token, from the environment with the
 * embedded issuer. The embedded signer and the token service both apply them through this
 * module, so a token says the same thing whichever issued it, and the limits of the relying
 * parties are checked before anything is signed.
 */

/** The audience of AWS STS: session tags go only into tokens for it. */
export const STS_AUDIENCE = 'sts.amazonaws.com';
export { AWS_TAGS_CLAIM, ORIGINAL_SUB_CLAIM };

/** AWS's limits on session tags (IAM User Guide, "Tagging AWS STS sessions"). */
export const MAX_SESSION_TAGS = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;
/**
 * The characters AWS allows in tags. Made on first use: building a pattern of Unicode classes
 * takes about 0.3 ms, which every token would pay at start-up, session tags or not.
 */
let tagPattern: RegExp | undefined;
const tagCharacters = (): RegExp => (tagPattern ??= /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u);
/** OIDC and AWS both bound `sub` at 255 characters. */
export const MAX_SUBJECT_LENGTH = 255;
/** STS's bound on the WebIdentityToken parameter. */
export const MAX_AWS_TOKEN_LENGTH = 20_000;

/** The run claims a list may name, in the registry's order. */
export const FORMAT_CLAIM_NAMES: readonly RunClaimName[] = RUN_CLAIMS.map((c) => c.claim);

export interface ClaimFormats {
  /** Run claims carried as AWS session tags, in tokens for STS. */
  sessionTags?: readonly RunClaimName[];
  /** Run claims `sub` is made of, in this order, in every token. */
  subjectClaims?: readonly RunClaimName[];
}

export interface AwsTagsClaim {
  principal_tags: Record<string, [string]>;
  transitive_tag_keys: string[];
}

/** What a format adds to or changes in a token's claims. */
export interface FormattedClaims {
  sub?: string;
  [ORIGINAL_SUB_CLAIM]?: string;
  [AWS_TAGS_CLAIM]?: AwsTagsClaim;
}

/** A comma list of run claims, each once: `teams,environment,sub`. */
export function parseClaimList(raw: string): Parsed<RunClaimName[]> {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const expected = `expected a comma list of ${FORMAT_CLAIM_NAMES.join(', ')}`;
  if (items.length === 0) return problem(`nothing in it: ${expected}`);
  const unknown = items.find((c) => !(FORMAT_CLAIM_NAMES as readonly string[]).includes(c));
  if (unknown !== undefined) return problem(`${quote(unknown, 40)} is not a run claim: ${expected}`);
  const twice = items.find((c, i) => items.indexOf(c) !== i);
  if (twice !== undefined) return problem(`${twice} is named twice`);
  return { ok: true, value: items as RunClaimName[] };
}

export const AWS_SESSION_TAGS: Setting<RunClaimName[]> = {
  variable: 'OZ_AWS_SESSION_TAGS',
  parse: parseClaimList,
  help: 'run claims that tokens for sts.amazonaws.com carry as AWS session tags, e.g. teams,environment',
};

export const SUBJECT_CLAIMS: Setting<RunClaimName[]> = {
  variable: 'OZ_SUBJECT_CLAIMS',
  parse: parseClaimList,
  help: 'run claims that sub is made of, e.g. teams,environment,sub',
};

/** The formats the embedded issuer applies: from the environment, where the platform puts them. */
export function readClaimFormats(env: Env): ClaimFormats {
  const sessionTags = readSetting(AWS_SESSION_TAGS, env)?.value;
  const subjectClaims = readSetting(SUBJECT_CLAIMS, env)?.value;
  return { ...(sessionTags ? { sessionTags } : {}), ...(subjectClaims ? { subjectClaims } : {}) };
}

/**
 * A value inside the subject format: `%` as `%25`, then `:` as `%3A`, so that `:` only ever
 * separates and the format decodes one way (a `%3A` that a value really contained reads back
 * as `%253A`, not as a `:`).
 */
export function escapeSubjectValue(value: string): string {
  return value.replaceAll('%', '%25').replaceAll(':', '%3A');
}

/** The value a claim contributes: a list (teams) joined with `sep`, or undefined when the run has none. */
function claimText(run: RunClaims, claim: RunClaimName, sep: string, escape: (v: string) => string = (v) => v): string | undefined {
  const v = (run as Record<string, string | string[] | undefined>)[claim];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.map(escape).join(sep) : escape(v);
}

/**
 * `sub` in the subject format: `claim:value` pairs in the list's order, joined with `:`. Several
 * teams are joined with `,` (a team UID cannot hold one: the list is split on commas), so that
 * `:` keeps separating pairs. A claim the run does not have is left out, pair and all.
 */
export function encodeSubject(run: RunClaims, claims: readonly RunClaimName[]): string {
  const pairs: string[] = [];
  for (const claim of claims) {
    const text = claimText(run, claim, ',', escapeSubjectValue);
    if (text !== undefined) pairs.push(`${claim}:${text}`);
  }
  return pairs.join(':');
}

/**
 * AWS's session-tags claim: one tag per listed claim the run has, one value each, several teams
 * joined with `:`. Every key is transitive: a tag that says who the run is must stay true along
 * a role chain, and a transitive tag is one a chained session cannot set again to other values.
 */
export function encodeSessionTags(run: RunClaims, claims: readonly RunClaimName[]): AwsTagsClaim {
  const principal_tags: Record<string, [string]> = {};
  for (const claim of claims) {
    const text = claimText(run, claim, ':');
    if (text !== undefined) principal_tags[claim] = [text];
  }
  return { principal_tags, transitive_tag_keys: Object.keys(principal_tags) };
}

const length = (s: string) => Array.from(s).length;

/** Why AWS would refuse these session tags, or undefined: count, key and value lengths, characters. */
export function sessionTagsProblem(tags: Record<string, readonly string[]>): string | undefined {
  const keys = Object.keys(tags);
  if (keys.length > MAX_SESSION_TAGS) return `${keys.length} AWS session tags, more than AWS's ${MAX_SESSION_TAGS}`;
  for (const key of keys) {
    if (length(key) > MAX_TAG_KEY_LENGTH) return `the AWS session tag key ${quote(key)} is ${length(key)} characters long, more than AWS's ${MAX_TAG_KEY_LENGTH}`;
    if (key === '' || !tagCharacters().test(key)) return `the AWS session tag key ${quote(key)} holds a character AWS does not allow in tags (letters, digits, spaces and _.:/=+-@)`;
    for (const value of tags[key] ?? []) {
      if (length(value) > MAX_TAG_VALUE_LENGTH) {
        return `the AWS session tag ${key} = ${quote(value)} is ${length(value)} characters long, more than AWS's ${MAX_TAG_VALUE_LENGTH}`;
      }
      if (!tagCharacters().test(value)) {
        return `the AWS session tag ${key} = ${quote(value)} holds a character AWS does not allow in tags (letters, digits, spaces and _.:/=+-@)`;
      }
    }
  }
  return undefined;
}

/** Why a `sub` is too long, or undefined. It is refused, never cut: a cut one could name someone else. */
export function subjectProblem(sub: string): string | undefined {
  return length(sub) > MAX_SUBJECT_LENGTH ? `the subject ${quote(sub)} is ${length(sub)} characters long, more than the ${MAX_SUBJECT_LENGTH} OIDC and AWS allow` : undefined;
}

/**
 * What the formats change in a token for `audience`: `sub` in the subject format (in every
 * token: a platform that formats `sub` wants it so everywhere), the identity it held under
 * `oz_sub`, and session tags in tokens for STS. Or the limit the result breaks.
 */
export function formatClaims(run: RunClaims, audience: string, formats: ClaimFormats): Parsed<FormattedClaims> {
  const out: FormattedClaims = {};
  if (formats.subjectClaims && formats.subjectClaims.length > 0) {
    const sub = encodeSubject(run, formats.subjectClaims);
    const bad = subjectProblem(sub);
    if (bad) return problem(bad);
    out.sub = sub;
    out[ORIGINAL_SUB_CLAIM] = run.sub;
  }
  if (audience === STS_AUDIENCE && formats.sessionTags && formats.sessionTags.length > 0) {
    const tags = encodeSessionTags(run, formats.sessionTags);
    const bad = sessionTagsProblem(tags.principal_tags);
    if (bad) return problem(bad);
    out[AWS_TAGS_CLAIM] = tags;
  }
  return { ok: true, value: out };
}

/** Why STS would refuse a signed token for its length, or undefined (only tokens for STS are bounded). */
export function tokenLengthProblem(token: string, audience: string): string | undefined {
  if (audience !== STS_AUDIENCE || token.length <= MAX_AWS_TOKEN_LENGTH) return undefined;
  return `the token for ${STS_AUDIENCE} is ${token.length} characters long, more than the ${MAX_AWS_TOKEN_LENGTH} AWS STS accepts: carry fewer or shorter session tags and claims`;
}

/** An identity token's claims with the formats applied, or the relying party's limit they break. */
export function formattedIdentityClaims(run: RunClaims, input: ClaimsInput, formats: ClaimFormats): Parsed<IdentityClaims & FormattedClaims> {
  const formatted = formatClaims(run, input.audience, formats);
  if (!formatted.ok) return formatted;
  return { ok: true, value: { ...identityClaims(run, input), ...formatted.value } };
}
