import { OzError, quote } from '../core/errors.js';
import type { DecodedJwt } from '../core/jwt.js';
import { AWS_STS_AUDIENCE } from '../sandbox/aws.js';
import { sessionNameForRun } from '../sandbox/aws-session.js';
import { isObject, parseJson } from './json.js';
import { audiences, headerChecks, issuerHostPath, timeChecks } from './token-checks.js';
import { check, show, verdictOf, type Check, type Verdict } from './verdict.js';

/** The claim under which a token for STS carries session tags (AWS's own name for it). */
export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';
export const ASSUME_ROLE_WITH_WEB_IDENTITY = 'sts:AssumeRoleWithWebIdentity';
export const TAG_SESSION = 'sts:TagSession';
/** The algorithms STS accepts in a web identity token. */
const AWS_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'];
/** STS's bound on the WebIdentityToken parameter. */
const MAX_WEB_IDENTITY_TOKEN_LENGTH = 20_000;

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  NotPrincipal?: unknown;
  Action?: string | string[];
  NotAction?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export interface TrustPolicy {
  statements: PolicyStatement[];
  /** From `aws iam get-role` output: the role the policy belongs to. */
  roleArn?: string;
}

/**
 * A trust policy as the AWS CLI prints it: the policy document itself, or `aws iam get-role`
 * output (`{"Role": {"Arn", "AssumeRolePolicyDocument"}}`), where the raw API gives the
 * document URL-encoded and the CLI gives it decoded; both are read.
 */
export function parseTrustPolicy(text: string, what: string): TrustPolicy {
  const bad = (why: string): never => {
    throw new OzError('usage', `${what} is not an IAM trust policy: ${why}`);
  };
  let doc = parseJson(text, what);
  let roleArn: string | undefined;
  if (isObject(doc) && isObject(doc.Role)) {
    const role = doc.Role;
    if (typeof role.Arn === 'string') roleArn = role.Arn;
    doc = role.AssumeRolePolicyDocument;
    if (typeof doc === 'string') doc = parseJson(doc.startsWith('%') ? safeDecode(doc) : doc, what);
    if (doc === undefined) bad('the role has no AssumeRolePolicyDocument');
  }
  if (!isObject(doc)) return bad('expected a JSON object with a Statement');
  const raw = doc.Statement;
  if (raw === undefined) bad('it has no Statement');
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) bad('its Statement list is empty');
  const statements = list.map((s, i) => parseStatement(s, `statement #${i + 1}`, bad));
  return roleArn === undefined ? { statements } : { statements, roleArn };
}

function parseStatement(s: unknown, where: string, bad: (why: string) => never): PolicyStatement {
  if (!isObject(s)) return bad(`${where} is not an object`);
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') bad(`${where} has Effect ${s.Effect === undefined ? '(none)' : quote(show(s.Effect))}; expected Allow or Deny`);
  for (const key of ['Action', 'NotAction'] as const) {
    const v = s[key];
    if (v !== undefined && !isStringOrStrings(v)) bad(`${where}: ${key} must be a string or a list of strings`);
  }
  if (s.Action === undefined && s.NotAction === undefined) bad(`${where} has neither Action nor NotAction`);
  if (s.Principal === undefined && s.NotPrincipal === undefined) bad(`${where} has neither Principal nor NotPrincipal`);
  const cond = s.Condition;
  if (cond !== undefined) {
    if (!isObject(cond)) bad(`${where}: Condition must be an object of operators`);
    for (const [op, block] of Object.entries(cond as Record<string, unknown>)) {
      if (!isObject(block)) bad(`${where}: the ${op} condition must be an object of keys and values`);
      parseOperator(op, where);
      for (const [key, value] of Object.entries(block as Record<string, unknown>)) {
        if (!isConditionValue(value)) bad(`${where}: the value of ${op} ${key} must be a string, a number, a boolean or a list of them`);
      }
    }
  }
  return s as unknown as PolicyStatement;
}

// ---------------------------------------------------------------------------------------
// Condition operators, with the semantics of IAM's policy evaluation documentation.

type BaseOperator =
  | 'StringEquals'
  | 'StringNotEquals'
  | 'StringEqualsIgnoreCase'
  | 'StringNotEqualsIgnoreCase'
  | 'StringLike'
  | 'StringNotLike'
  | 'Null';

const BASE_OPERATORS: readonly BaseOperator[] = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'Null',
];

export interface ConditionOperator {
  base: BaseOperator;
  set?: 'ForAnyValue' | 'ForAllValues';
  ifExists: boolean;
}

export function parseOperator(name: string, where = 'the policy'): ConditionOperator {
  let rest = name;
  let set: ConditionOperator['set'];
  for (const prefix of ['ForAnyValue', 'ForAllValues'] as const) {
    if (rest.startsWith(`${prefix}:`)) {
      set = prefix;
      rest = rest.slice(prefix.length + 1);
    }
  }
  const ifExists = rest.endsWith('IfExists') && rest !== 'IfExists';
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  const base = BASE_OPERATORS.find((b) => b === rest);
  if (base === undefined || (base === 'Null' && (ifExists || set !== undefined))) {
    throw new OzError(
      'usage',
      `${where} uses the condition operator ${quote(name)}, which oz cannot evaluate; it knows ${BASE_OPERATORS.join(', ')}, ` +
        'with ForAnyValue:/ForAllValues: and IfExists (not on Null)',
    );
  }
  return set === undefined ? { base, ifExists } : { base, set, ifExists };
}

/**
 * One condition: an operator over one context key and the policy's values for it.
 * `requestValues` undefined means the key is absent from the request context.
 *
 * - Several policy values: any may match (OR); for a negated operator, none may (NOR).
 * - A missing key: false, except with IfExists (true), ForAllValues (true: no value fails),
 *   a negated operator (true) and Null:true.
 * - ForAnyValue: some request value matches; ForAllValues: every request value matches.
 * - Values compare case-sensitively except in the IgnoreCase operators; StringLike's `*`
 *   matches any run of characters and `?` one character.
 */
export function evaluateCondition(op: ConditionOperator, policyValues: readonly string[], requestValues: readonly string[] | undefined): boolean {
  if (op.base === 'Null') {
    const absent = requestValues === undefined || requestValues.length === 0;
    return policyValues.some((v) => (v.toLowerCase() === 'true' ? absent : v.toLowerCase() === 'false' ? !absent : false));
  }
  if (requestValues === undefined || requestValues.length === 0) {
    if (op.ifExists || op.set === 'ForAllValues') return true;
    if (op.set === 'ForAnyValue') return false;
    return isNegated(op.base);
  }
  const positive = positiveOf(op.base);
  const matches = (rv: string) => policyValues.some((pv) => matchOne(positive, pv, rv));
  const holds = (rv: string) => (isNegated(op.base) ? !matches(rv) : matches(rv));
  if (op.set === 'ForAllValues') return requestValues.every(holds);
  if (op.set === 'ForAnyValue') return requestValues.some(holds);
  // A single-valued operator on a key with several values: IAM matches when any value does,
  // so a negated operator holds only when no value matches.
  return isNegated(op.base) ? !requestValues.some(matches) : requestValues.some(matches);
}

function isNegated(base: BaseOperator): boolean {
  return base.includes('Not');
}

function positiveOf(base: BaseOperator): 'StringEquals' | 'StringEqualsIgnoreCase' | 'StringLike' {
  if (base.includes('Like')) return 'StringLike';
  return base.includes('IgnoreCase') ? 'StringEqualsIgnoreCase' : 'StringEquals';
}

function matchOne(op: 'StringEquals' | 'StringEqualsIgnoreCase' | 'StringLike', policyValue: string, requestValue: string): boolean {
  switch (op) {
    case 'StringEquals':
      return policyValue === requestValue;
    case 'StringEqualsIgnoreCase':
      return policyValue.toLowerCase() === requestValue.toLowerCase();
    case 'StringLike':
      return globToRegExp(policyValue, false).test(requestValue);
  }
}

/**
 * IAM's wildcards: `*` any run of characters (none included), `?` exactly one; the policy
 * variables `${*}`, `${?}` and `${$}` stand for those characters themselves.
 */
export function globToRegExp(pattern: string, ignoreCase: boolean): RegExp {
  const literal = (c: string) => c.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');
  const body = pattern
    .split(/(\$\{[*?$]\}|[*?])/)
    .map((part) => (part === '*' ? '[\\s\\S]*' : part === '?' ? '[\\s\\S]' : /^\$\{[*?$]\}$/.test(part) ? literal(part.charAt(2)) : Array.from(part, literal).join('')))
    .join('');
  return new RegExp(`^${body}$`, ignoreCase ? 'iu' : 'u');
}

// ---------------------------------------------------------------------------------------
// The request STS evaluates for AssumeRoleWithWebIdentity.

export interface AwsRequest {
  /** Condition keys, lower-cased (IAM compares key names case-insensitively), and their values. */
  context: Map<string, string[]>;
  actions: string[];
  /** `oidc-provider/<host/path>`: the resource part of the provider ARN the token names. */
  providerResource: string;
}

/** What STS knows when this token arrives: its condition keys and the actions it asks for. */
export function awsRequestOf(claims: Record<string, unknown>): AwsRequest {
  const iss = typeof claims.iss === 'string' ? claims.iss : '';
  const hostPath = issuerHostPath(iss);
  const context = new Map<string, string[]>();
  const put = (key: string, values: string[] | undefined) => {
    if (values !== undefined) context.set(key.toLowerCase(), values);
  };
  const aud = audiences(claims);
  put(`${hostPath}:aud`, aud.length > 0 ? aud : undefined);
  put(`${hostPath}:sub`, typeof claims.sub === 'string' ? [claims.sub] : undefined);
  put(`${hostPath}:amr`, stringList(claims.amr));
  const tags = sessionTagsOf(claims);
  if (tags) {
    for (const [k, v] of Object.entries(tags.principalTags)) put(`aws:RequestTag/${k}`, [v]);
    put('aws:TagKeys', Object.keys(tags.principalTags));
    put('sts:TransitiveTagKeys', tags.transitiveTagKeys);
  }
  if (typeof claims.run_id === 'string' && claims.run_id !== '') put('sts:RoleSessionName', [sessionNameForRun(claims.run_id)]);
  const actions = tags ? [ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION] : [ASSUME_ROLE_WITH_WEB_IDENTITY];
  return { context, actions, providerResource: `oidc-provider/${hostPath}` };
}

export interface SessionTags {
  principalTags: Record<string, string>;
  transitiveTagKeys?: string[];
}

/** The session tags a token asks STS to set, or undefined when it carries none. */
export function sessionTagsOf(claims: Record<string, unknown>): SessionTags | undefined {
  const raw = claims[AWS_TAGS_CLAIM];
  if (!isObject(raw) || !isObject(raw.principal_tags)) return undefined;
  const principalTags: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.principal_tags)) {
    // AWS's format gives each tag a list holding its one value.
    const value = Array.isArray(v) ? v[0] : v;
    if (typeof value === 'string') principalTags[k] = value;
  }
  const transitive = stringList(raw.transitive_tag_keys);
  return transitive === undefined ? { principalTags } : { principalTags, transitiveTagKeys: transitive };
}

// ---------------------------------------------------------------------------------------

export interface EvaluateAwsOptions {
  now: Date;
  /** The token as sent, for STS's length limit. */
  tokenText: string;
}

/**
 * Would STS let this token assume the role whose trust policy this is? Each action the call
 * needs (AssumeRoleWithWebIdentity, and TagSession when the token carries tags) must be
 * allowed by some Allow statement whose principal, action and conditions all match, and
 * denied by no Deny statement that matches.
 */
export function evaluateAwsTrustPolicy(policy: TrustPolicy, token: DecodedJwt, opts: EvaluateAwsOptions): Verdict {
  const claims = token.payload;
  const request = awsRequestOf(claims);
  const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
  const checks: Check[] = [...headerChecks(token, AWS_ALGS)];
  checks.push(
    check('issuer (iss)', 'an https URL (the IAM OIDC provider\'s URL)', show(iss), iss !== undefined && /^https:\/\/[^/]/i.test(iss)),
    audienceCheck(audiences(claims)),
    check(
      'token size',
      `at most ${MAX_WEB_IDENTITY_TOKEN_LENGTH} characters`,
      String(opts.tokenText.length),
      opts.tokenText.length <= MAX_WEB_IDENTITY_TOKEN_LENGTH,
    ),
    ...timeChecks(claims, opts.now, 0),
  );
  const account = policy.roleArn?.split(':')[4];
  const partition = policy.roleArn?.split(':')[1];
  const expectedProvider = `arn:${partition ?? 'aws'}:iam::${account ?? '<account>'}:${request.providerResource}`;

  const applies: boolean[][] = policy.statements.map((statement, i) => {
    const group = `statement #${i + 1}${statement.Sid ? ` (${statement.Sid})` : ''}: ${statement.Effect}`;
    const principalOk = principalMatches(statement, request.providerResource, account, partition);
    checks.push(check('principal', expectedProvider, describePrincipal(statement), principalOk, undefined, group));
    const conditionsOk = conditionChecks(statement, request, group).map((c) => {
      checks.push(c);
      return c.ok;
    });
    const conditionsHold = conditionsOk.every(Boolean);
    return request.actions.map((action) => {
      const actionOk = actionMatches(statement, action);
      checks.push(check(`action ${action}`, 'in Action (or not in NotAction)', describeActions(statement), actionOk, undefined, group));
      return principalOk && actionOk && conditionsHold;
    });
  });

  for (const [a, action] of request.actions.entries()) {
    const allowedBy = policy.statements.findIndex((s, i) => s.Effect === 'Allow' && applies[i]?.[a]);
    const deniedBy = policy.statements.findIndex((s, i) => s.Effect === 'Deny' && applies[i]?.[a]);
    const actual =
      deniedBy >= 0
        ? `denied by statement #${deniedBy + 1}`
        : allowedBy >= 0
          ? `allowed by statement #${allowedBy + 1}`
          : 'no Allow statement matches (implicit deny)';
    checks.push(
      check(
        `${action} allowed`,
        'an Allow statement matches and no Deny statement does',
        actual,
        allowedBy >= 0 && deniedBy < 0,
        action === TAG_SESSION && allowedBy < 0 ? `the token carries session tags (${AWS_TAGS_CLAIM}), so the trust policy must also allow ${TAG_SESSION}` : undefined,
      ),
    );
  }
  const accepted = checks.every((c) => c.ok || c.group !== undefined);
  const tags = sessionTagsOf(claims);
  const outcome: Record<string, unknown> = {
    ...(policy.roleArn ? { role_arn: policy.roleArn } : {}),
    actions: request.actions,
    ...(tags ? { session_tags: tags.principalTags } : {}),
  };
  return verdictOf('aws', checks, outcome, accepted);
}

/**
 * STS takes the token only if its `aud` is one of the OIDC provider's client IDs. The role's
 * policy does not say which those are, so any audience passes here, with a note when it is
 * not the one oz setup registers.
 */
function audienceCheck(aud: string[]): Check {
  const usual = aud.includes(AWS_STS_AUDIENCE);
  return check(
    'audience (aud)',
    `a client ID of the IAM OIDC provider (oz setup registers ${AWS_STS_AUDIENCE})`,
    aud.length === 1 ? (aud[0] as string) : JSON.stringify(aud),
    aud.length > 0,
    usual || aud.length === 0 ? undefined : 'check that the provider lists it: aws iam get-open-id-connect-provider --open-id-connect-provider-arn ARN',
  );
}

function conditionChecks(statement: PolicyStatement, request: AwsRequest, group: string): Check[] {
  const checks: Check[] = [];
  for (const [opName, block] of Object.entries(statement.Condition ?? {})) {
    const op = parseOperator(opName);
    for (const [key, raw] of Object.entries(block)) {
      const policyValues = conditionValues(raw);
      const requestValues = request.context.get(key.toLowerCase());
      const ok = evaluateCondition(op, policyValues, requestValues);
      checks.push(
        check(
          `${opName} ${key}`,
          policyValues.length === 1 ? (policyValues[0] as string) : JSON.stringify(policyValues),
          requestValues === undefined ? '(absent)' : requestValues.length === 1 ? (requestValues[0] as string) : JSON.stringify(requestValues),
          ok,
          ok ? undefined : conditionHint(key, requestValues, request),
          group,
        ),
      );
    }
  }
  return checks;
}

function conditionHint(key: string, requestValues: readonly string[] | undefined, request: AwsRequest): string | undefined {
  const k = key.toLowerCase();
  if (requestValues !== undefined) return undefined;
  if (k.startsWith('aws:requesttag/') || k === 'aws:tagkeys') {
    return `the token carries no such session tag: the platform adds tags with grant-run --aws-session-tags (OZ_AWS_SESSION_TAGS)`;
  }
  const provider = request.providerResource.slice('oidc-provider/'.length).toLowerCase();
  if (k.includes(':') && !k.startsWith('aws:') && !k.startsWith('sts:') && !k.startsWith(`${provider}:`)) {
    return `the key names another provider; this token's keys start with ${provider}:`;
  }
  return undefined;
}

function principalMatches(statement: PolicyStatement, providerResource: string, account: string | undefined, partition: string | undefined): boolean {
  if (statement.Principal !== undefined) return principalListMatches(statement.Principal, providerResource, account, partition);
  return !principalListMatches(statement.NotPrincipal, providerResource, account, partition);
}

function principalListMatches(principal: unknown, providerResource: string, account: string | undefined, partition: string | undefined): boolean {
  if (principal === '*') return true;
  if (!isObject(principal)) return false;
  const federated = principal.Federated;
  const arns = typeof federated === 'string' ? [federated] : Array.isArray(federated) ? federated : [];
  return arns.some((arn) => {
    if (arn === '*') return true;
    if (typeof arn !== 'string') return false;
    const parts = arn.split(':');
    if (parts.length < 6 || parts[0] !== 'arn' || parts[2] !== 'iam') return false;
    if (account !== undefined && parts[4] !== account) return false;
    // A role trusts only providers in its own partition (aws, aws-cn, aws-us-gov, …).
    if (partition !== undefined && parts[1] !== partition) return false;
    return sameProvider(parts.slice(5).join(':'), providerResource);
  });
}

/** Host names compare case-insensitively, paths exactly. */
function sameProvider(a: string, b: string): boolean {
  const split = (r: string) => {
    const slash = r.indexOf('/', 'oidc-provider/'.length);
    return slash < 0 ? [r.toLowerCase(), ''] : [r.slice(0, slash).toLowerCase(), r.slice(slash)];
  };
  const [ha, pa] = split(a);
  const [hb, pb] = split(b);
  return ha === hb && pa === pb;
}

function describePrincipal(statement: PolicyStatement): string {
  return statement.Principal !== undefined ? show(statement.Principal) : `NotPrincipal ${show(statement.NotPrincipal)}`;
}

function actionMatches(statement: PolicyStatement, action: string): boolean {
  const listed = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const hit = (patterns: string[]) => patterns.some((p) => globToRegExp(p, true).test(action));
  if (statement.Action !== undefined) return hit(listed(statement.Action));
  return !hit(listed(statement.NotAction));
}

function describeActions(statement: PolicyStatement): string {
  return statement.Action !== undefined ? show(statement.Action) : `NotAction ${show(statement.NotAction)}`;
}

/** IAM reads booleans and numbers in conditions as their text. */
function conditionValues(raw: unknown): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((v) => String(v));
}

function isConditionValue(v: unknown): boolean {
  const scalar = (x: unknown) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
  return scalar(v) || (Array.isArray(v) && v.every(scalar));
}

function isStringOrStrings(v: unknown): boolean {
  return typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

function stringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return undefined;
  return v.filter((x): x is string => typeof x === 'string');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
