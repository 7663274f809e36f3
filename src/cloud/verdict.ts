/**
 * What `oz federate explain` reports: every check a relying party makes, with the value it
 * expects and the value it would see, and whether the token passes. The evaluators build
 * these and never print; the CLI renders them.
 */
export interface Check {
  /** What is checked, e.g. `aud`, `signature algorithm`, `StringEquals oidc.example.com:sub`. */
  name: string;
  expected: string;
  actual: string;
  ok: boolean;
  /** Why it failed, or what an administrator should know about a pass. */
  note?: string;
  /** The policy statement or credential the check belongs to, when there are several. */
  group?: string;
}

export interface Verdict {
  relyingParty: 'aws' | 'gcp' | 'azure';
  accepted: boolean;
  checks: Check[];
  /** What the relying party would do with the token when it accepts it (role, principal, …). */
  outcome?: Record<string, unknown>;
}

export function check(name: string, expected: string, actual: string, ok: boolean, note?: string, group?: string): Check {
  return {
    ...(group === undefined ? {} : { group }),
    name,
    expected,
    actual,
    ok,
    ...(note === undefined ? {} : { note }),
  };
}

/**
 * The verdict over `checks`. Unless the evaluator decides it (AWS, where any one of several
 * statements may allow), the token is accepted when every check passes.
 */
export function verdictOf(
  relyingParty: Verdict['relyingParty'],
  checks: Check[],
  outcome?: Record<string, unknown>,
  accepted = checks.every((c) => c.ok),
): Verdict {
  return outcome === undefined ? { relyingParty, accepted, checks } : { relyingParty, accepted, checks, outcome };
}

/** A claim as a relying party's log would show it. */
export function show(value: unknown): string {
  if (value === undefined) return '(absent)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
