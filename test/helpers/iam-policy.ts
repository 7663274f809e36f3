// An IAM role trust policy evaluator for AssumeRoleWithWebIdentity, written from AWS's IAM
// documentation (policy evaluation logic, condition operators, multivalued context keys). It is
// the referee the AWS STS stand-in uses and must stay independent of oz's own reading of the same
// rules, so it imports nothing from src/.
//
// What it covers: Effect Allow/Deny (an explicit Deny wins, and every requested action must be
// allowed); Principal `*` or `{ Federated }`; Action and NotAction with `*`/`?` wildcards,
// case-insensitive; Condition with StringEquals, StringNotEquals, StringEqualsIgnoreCase,
// StringNotEqualsIgnoreCase, StringLike, StringNotLike and Null, the ForAnyValue:/ForAllValues:
// prefixes and the IfExists suffix. Condition key names are matched case-insensitively, values
// case-sensitively (except the IgnoreCase operators). Policy variables (`${...}`) are not expanded.

export type PolicyValue = string | boolean | number;

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: '*' | Record<string, string | string[]>;
  Action?: string | string[];
  NotAction?: string | string[];
  Condition?: Record<string, Record<string, PolicyValue | PolicyValue[]>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export interface RequestContext {
  /** The federated principal: the OIDC provider's ARN. */
  principal: string;
  /** Condition keys present in the request, each with its values (a single-valued key has one). */
  keys: Record<string, string[]>;
}

export interface ConditionTrace {
  operator: string;
  key: string;
  policyValues: string[];
  contextValues: string[] | undefined;
  result: boolean;
}

export interface StatementTrace {
  index: number;
  sid?: string;
  effect: 'Allow' | 'Deny';
  principal: boolean;
  action: boolean;
  conditions: ConditionTrace[];
  /** Principal, action and every condition matched. */
  applies: boolean;
}

export interface ActionDecision {
  action: string;
  decision: 'Allow' | 'ExplicitDeny' | 'ImplicitDeny';
  statements: StatementTrace[];
}

export interface PolicyDecision {
  allowed: boolean;
  actions: ActionDecision[];
}

const OPERATORS = new Set([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike', 'Null',
]);
const NEGATED = new Set(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike']);

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function wildcard(pattern: string, flags = ''): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, `s${flags}`);
}

interface ParsedOperator {
  set?: 'ForAnyValue' | 'ForAllValues';
  base: string;
  ifExists: boolean;
}

function parseOperator(name: string): ParsedOperator {
  const m = /^(?:(ForAnyValue|ForAllValues):)?(.+?)(IfExists)?$/.exec(name);
  const base = m?.[2] ?? '';
  if (!m || !OPERATORS.has(base) || (base === 'Null' && (m[1] || m[3]))) {
    throw new TypeError(`unsupported condition operator ${JSON.stringify(name)}`);
  }
  return { set: m[1] as ParsedOperator['set'], base, ifExists: m[3] !== undefined };
}

/** Checks a document's shape and operators, as IAM does when the policy is saved. */
export function validatePolicy(policy: PolicyDocument): void {
  const statements = list(policy.Statement);
  if (statements.length === 0) throw new TypeError('the policy has no Statement');
  statements.forEach((s, i) => {
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new TypeError(`Statement ${i}: Effect must be Allow or Deny`);
    if ((s.Action === undefined) === (s.NotAction === undefined)) throw new TypeError(`Statement ${i}: exactly one of Action and NotAction`);
    if (s.Principal === undefined) throw new TypeError(`Statement ${i}: a trust policy statement needs a Principal`);
    for (const op of Object.keys(s.Condition ?? {})) parseOperator(op);
  });
}

/** One context value against the policy values, for a base operator without negation. */
function matchesOne(base: string, value: string, policyValues: string[]): boolean {
  switch (base) {
    case 'StringEquals':
    case 'StringNotEquals':
      return policyValues.includes(value);
    case 'StringEqualsIgnoreCase':
    case 'StringNotEqualsIgnoreCase':
      return policyValues.some((p) => p.toLowerCase() === value.toLowerCase());
    case 'StringLike':
    case 'StringNotLike':
      return policyValues.some((p) => wildcard(p).test(value));
    default:
      throw new TypeError(`unsupported condition operator ${base}`);
  }
}

function lookup(keys: Record<string, string[]>, key: string): string[] | undefined {
  const wanted = key.toLowerCase();
  const found = Object.entries(keys).find(([k]) => k.toLowerCase() === wanted);
  return found && found[1].length > 0 ? found[1] : undefined;
}

export function evaluateCondition(operator: string, key: string, rawPolicyValues: PolicyValue | PolicyValue[], keys: Record<string, string[]>): ConditionTrace {
  const op = parseOperator(operator);
  const policyValues = list(rawPolicyValues).map(String);
  const contextValues = lookup(keys, key);
  const trace = (result: boolean): ConditionTrace => ({ operator, key, policyValues, contextValues, result });

  if (op.base === 'Null') {
    // "true": the key must be absent; "false": it must be present.
    const absent = contextValues === undefined;
    return trace(policyValues.some((v) => (v.toLowerCase() === 'true' ? absent : !absent)));
  }
  if (contextValues === undefined) {
    if (op.ifExists) return trace(true);
    // An absent key matches nothing: positive operators fail, negated ones (and ForAllValues,
    // vacuously) hold.
    if (op.set === 'ForAllValues') return trace(true);
    if (op.set === 'ForAnyValue') return trace(false);
    return trace(NEGATED.has(op.base));
  }
  const negated = NEGATED.has(op.base);
  const satisfies = (v: string) => matchesOne(op.base, v, policyValues) !== negated;
  if (op.set === 'ForAllValues') return trace(contextValues.every(satisfies));
  if (op.set === 'ForAnyValue') return trace(contextValues.some(satisfies));
  // Without a set operator a negated operator is the negation of its positive form over the
  // whole set ("no value matches"); a positive one holds if any value matches.
  const anyMatch = contextValues.some((v) => matchesOne(op.base, v, policyValues));
  return trace(negated ? !anyMatch : anyMatch);
}

function principalMatches(principal: PolicyStatement['Principal'], federated: string): boolean {
  if (principal === '*') return true;
  if (!principal || typeof principal !== 'object') return false;
  if (list(principal.AWS).includes('*')) return true;
  return list(principal.Federated).includes(federated);
}

function actionMatches(s: PolicyStatement, action: string): boolean {
  const hit = (patterns: string[]) => patterns.some((p) => wildcard(p, 'i').test(action));
  return s.Action !== undefined ? hit(list(s.Action)) : !hit(list(s.NotAction));
}

/**
 * Decides each of `actions` (e.g. sts:AssumeRoleWithWebIdentity and sts:TagSession) as IAM does
 * for a role trust policy: denied if any applicable statement denies it, allowed if one allows
 * it, implicitly denied otherwise. The request is allowed only when every action is.
 */
export function evaluateTrustPolicy(policy: PolicyDocument, actions: string[], context: RequestContext): PolicyDecision {
  validatePolicy(policy);
  const statements = list(policy.Statement);
  const decisions = actions.map((action): ActionDecision => {
    const traces = statements.map((s, index): StatementTrace => {
      const principal = principalMatches(s.Principal, context.principal);
      const actionHit = actionMatches(s, action);
      const conditions = Object.entries(s.Condition ?? {}).flatMap(([operator, block]) =>
        Object.entries(block).map(([key, values]) => evaluateCondition(operator, key, values, context.keys)),
      );
      return { index, sid: s.Sid, effect: s.Effect, principal, action: actionHit, conditions, applies: principal && actionHit && conditions.every((c) => c.result) };
    });
    const applying = traces.filter((t) => t.applies);
    const decision = applying.some((t) => t.effect === 'Deny') ? 'ExplicitDeny' : applying.some((t) => t.effect === 'Allow') ? 'Allow' : 'ImplicitDeny';
    return { action, decision, statements: traces };
  });
  return { allowed: decisions.every((d) => d.decision === 'Allow'), actions: decisions };
}

// ---------------------------------------------------------------------------------------------
// Session tags carried in a web identity token

export const SESSION_TAGS_CLAIM = 'https://aws.amazon.com/tags';
const TAG_CHARS = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export interface SessionTags {
  tags: Record<string, string>;
  transitiveTagKeys: string[];
}

/**
 * Reads and checks the session tags claim as STS does; returns undefined when the token has none
 * and throws an Error whose message says which limit was broken.
 */
export function sessionTagsFromClaims(claims: Record<string, unknown>): SessionTags | undefined {
  const raw = claims[SESSION_TAGS_CLAIM];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`the ${SESSION_TAGS_CLAIM} claim must be an object`);
  const { principal_tags: principalTags, transitive_tag_keys: transitive } = raw as Record<string, unknown>;
  if (typeof principalTags !== 'object' || principalTags === null || Array.isArray(principalTags)) {
    throw new Error(`${SESSION_TAGS_CLAIM} must hold a principal_tags object`);
  }
  const tags: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(principalTags)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.length !== 1 || typeof values[0] !== 'string') throw new Error(`session tag ${key} must have exactly one string value`);
    const v = values[0];
    if (key.length < 1 || key.length > 128) throw new Error(`session tag key ${JSON.stringify(key)} must have length between 1 and 128`);
    if (v.length > 256) throw new Error(`session tag value of ${key} must have length less than or equal to 256`);
    if (!TAG_CHARS.test(key)) throw new Error(`session tag key ${JSON.stringify(key)} must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+`);
    if (!TAG_CHARS.test(v)) throw new Error(`session tag value ${JSON.stringify(v)} must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`);
    if (key.toLowerCase().startsWith('aws:')) throw new Error(`session tag key ${JSON.stringify(key)} cannot start with aws:`);
    // Tag keys are case-insensitive for uniqueness, as IAM treats them.
    if (seen.has(key.toLowerCase())) throw new Error(`duplicate session tag key ${JSON.stringify(key)} (keys are case-insensitive)`);
    seen.add(key.toLowerCase());
    tags[key] = v;
  }
  if (Object.keys(tags).length > 50) throw new Error(`at most 50 session tags are allowed, got ${Object.keys(tags).length}`);
  const transitiveTagKeys = transitive === undefined ? [] : transitive;
  if (!Array.isArray(transitiveTagKeys) || !transitiveTagKeys.every((k) => typeof k === 'string')) {
    throw new Error('transitive_tag_keys must be an array of strings');
  }
  for (const k of transitiveTagKeys as string[]) {
    if (!seen.has(k.toLowerCase())) throw new Error(`transitive tag key ${JSON.stringify(k)} is not one of the session tags`);
  }
  return { tags, transitiveTagKeys: transitiveTagKeys as string[] };
}

/** The IAM OIDC provider name for an issuer URL: host (and port) plus path, no scheme or trailing slash. */
export function oidcProviderName(issuer: string): string {
  return issuer.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/** The condition keys IAM puts in the request context of AssumeRoleWithWebIdentity. */
export function webIdentityContext(input: { account: string; partition?: string; issuer: string; aud: string; sub: string; sessionTags?: SessionTags }): RequestContext {
  const provider = oidcProviderName(input.issuer);
  const keys: Record<string, string[]> = {
    [`${provider}:aud`]: [input.aud],
    [`${provider}:sub`]: [input.sub],
  };
  if (input.sessionTags) {
    for (const [k, v] of Object.entries(input.sessionTags.tags)) keys[`aws:RequestTag/${k}`] = [v];
    keys['aws:TagKeys'] = Object.keys(input.sessionTags.tags);
  }
  return { principal: `arn:${input.partition ?? 'aws'}:iam::${input.account}:oidc-provider/${provider}`, keys };
}
