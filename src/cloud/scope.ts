import { OzError, quote } from '../core/errors.js';
import { escapeSubjectValue, FORMAT_CLAIM_NAMES } from '../core/claim-formats.js';

/** Who a cloud-side set-up lets in: run subjects, a team, an environment. */
export interface Scope {
  subjects: string[];
  team?: string;
  environment?: string;
}

/**
 * How AWS tells teams (and environments) apart, since its trust policies cannot read custom
 * claims: by session tags (`aws:RequestTag/teams`) or by a subject format
 * (`sub` = `teams:<uid>:…`, matched with StringLike).
 */
export type TeamBy = 'tags' | 'subject';
export const TEAM_BY: readonly TeamBy[] = ['tags', 'subject'];

/** The run claims a subject format may hold, in grant-run's vocabulary. */
export const SUBJECT_CLAIMS: readonly string[] = FORMAT_CLAIM_NAMES;
/** The order of the contract's own example, `teams:abc123:environment:env-1:sub:user-42`. */
export const DEFAULT_SUBJECT_CLAIMS = ['teams', 'environment', 'sub'];

/** A scope that pins someone: `aud` alone would let every run of the issuer in. */
export function checkScope(scope: Scope): void {
  if (scope.subjects.length === 0 && scope.team === undefined) {
    throw new OzError(
      'usage',
      scope.environment === undefined
        ? 'say whom to let in: --subject ID (repeatable) or --team UID; a policy that pins only the audience would trust every run of the issuer'
        : '--environment alone does not say whom to let in: add --team UID or --subject ID',
    );
  }
  for (const v of [...scope.subjects, scope.team, scope.environment]) {
    if (v !== undefined && (v === '' || /[\u0000-\u001f\u007f]/.test(v) || v.trim() !== v)) {
      throw new OzError('usage', `invalid scope value ${quote(v)}: it must be non-empty, without control characters or surrounding spaces`);
    }
  }
}

export function parseSubjectClaims(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = list.filter((c) => !(SUBJECT_CLAIMS as readonly string[]).includes(c));
  if (list.length === 0 || unknown.length > 0) {
    throw new OzError('usage', `invalid --subject-claims ${quote(text)}: expected a comma list of ${SUBJECT_CLAIMS.join(', ')}`);
  }
  return list;
}

/**
 * The `sub` values that a subject format gives the runs in scope, as IAM StringLike patterns:
 * each claim of `claims` becomes `claim:value`, the value escaped as tokens carry it (`%` as
 * `%25`, `:` as `%3A`: core/claim-formats.ts), a value the scope does not pin written `*`. One pattern per
 * subject. `exact` is true when no part is a wildcard, so the subject can be matched exactly
 * (Azure).
 */
export function subjectPatterns(scope: Scope, claims: readonly string[]): { patterns: string[]; exact: boolean } {
  if (scope.team !== undefined && !claims.includes('teams')) {
    throw new OzError('usage', '--subject-claims must include teams to scope a team by the subject format');
  }
  if (scope.environment !== undefined && !claims.includes('environment')) {
    throw new OzError('usage', '--subject-claims must include environment to scope an environment by the subject format');
  }
  if (scope.subjects.length > 0 && !claims.includes('sub')) {
    throw new OzError('usage', '--subject-claims must include sub to scope subjects by the subject format');
  }
  const subjects = scope.subjects.length > 0 ? scope.subjects : [undefined];
  let exact = true;
  const patterns = subjects.map((subject) =>
    claims
      .map((claim) => {
        const value = claim === 'teams' ? scope.team : claim === 'environment' ? scope.environment : claim === 'sub' ? subject : undefined;
        if (value === undefined) exact = false;
        return `${claim}:${value === undefined ? '*' : escapeLike(escapeSubjectValue(value))}`;
      })
      .join(':'),
  );
  return { patterns, exact };
}

/** IAM's policy-variable escapes keep `*`, `?` and `$` in a value literal inside StringLike. */
function escapeLike(value: string): string {
  return value.replace(/[*?$]/g, (c) => `\${${c}}`);
}

/** A word for a POSIX shell: as it is when it is plainly safe, else single-quoted. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A CEL string literal, double-quoted so that it pastes inside a single-quoted shell word as it is. */
export function celString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/** The issuer for a cloud set-up: AWS, GCP and Azure all fetch its discovery over https. */
export function checkCloudIssuer(issuer: string, source: string): void {
  if (!issuer.startsWith('https://')) {
    throw new OzError(
      'usage',
      `the issuer ${quote(issuer)} (${source}) is not https: AWS, GCP and Azure only trust an issuer they can reach over https; ` +
        'give --issuer https://… (publish it with oz issuer publish)',
    );
  }
}
