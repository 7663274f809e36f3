import { OzError } from '../core/errors.js';
import type { DecodedJwt } from '../core/jwt.js';
import { isObject, parseJson } from './json.js';
import { audiences, headerChecks, timeChecks } from './token-checks.js';
import { check, show, verdictOf, type Check, type Verdict } from './verdict.js';

/** The audience Microsoft Entra ID expects in a federated credential's token. */
export const AZURE_AUDIENCE = 'api://AzureADTokenExchange';
/** Entra ID accepts RS256 only from an external issuer. */
const AZURE_ALGS = ['RS256'];

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject?: string;
  audiences: string[];
  /** A flexible credential matches claims by expression instead of `subject`. */
  claimsMatchingExpression?: unknown;
}

/**
 * `az ad app federated-credential list` output (a list), or one credential as `show` or
 * `create` prints it.
 */
export function parseFederatedCredentials(text: string, what: string): FederatedCredential[] {
  const bad = (why: string): never => {
    throw new OzError('usage', `${what} is not Azure federated identity credentials: ${why}`);
  };
  const doc = parseJson(text, what);
  const list = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.value) ? doc.value : [doc];
  if (list.length === 0) bad('the list is empty: the application has no federated credential yet (oz setup azure)');
  return list.map((c: unknown, i: number) => {
    const where = `credential #${i + 1}`;
    if (!isObject(c)) return bad(`${where} is not an object`);
    if (typeof c.issuer !== 'string') bad(`${where} has no issuer`);
    if (c.subject !== undefined && c.subject !== null && typeof c.subject !== 'string') bad(`${where}: subject must be a string`);
    if (!Array.isArray(c.audiences) || !c.audiences.every((a) => typeof a === 'string')) bad(`${where}: audiences must be a list of strings`);
    return {
      name: typeof c.name === 'string' ? c.name : where,
      issuer: c.issuer as string,
      ...(typeof c.subject === 'string' ? { subject: c.subject } : {}),
      audiences: c.audiences as string[],
      ...(c.claimsMatchingExpression !== undefined && c.claimsMatchingExpression !== null ? { claimsMatchingExpression: c.claimsMatchingExpression } : {}),
    };
  });
}

export interface EvaluateAzureOptions {
  now: Date;
}

/**
 * Would Entra ID accept this token for one of these credentials? It looks for a credential
 * whose issuer and subject equal the token's `iss` and `sub` exactly (case-sensitive), with
 * the one audience in `aud`, and takes RS256 only. The credential explained is the best match:
 * issuer and subject, then issuer alone, then the first.
 */
export function evaluateAzureCredentials(credentials: FederatedCredential[], token: DecodedJwt, opts: EvaluateAzureOptions): Verdict {
  const claims = token.payload;
  const score = (c: FederatedCredential) => (c.issuer === claims.iss ? 2 : 0) + (c.subject !== undefined && c.subject === claims.sub ? 1 : 0);
  const ranked = credentials.map((c, i) => ({ c, i, s: score(c) })).sort((a, b) => b.s - a.s || a.i - b.i);
  const best = (ranked[0] as { c: FederatedCredential }).c;
  const checks: Check[] = [
    check('credential', 'one whose issuer and subject match the token', `${best.name} (best of ${credentials.length})`, true),
    check('issuer (iss)', best.issuer, show(claims.iss), claims.iss === best.issuer, caseHint(best.issuer, claims.iss)),
  ];
  if (best.claimsMatchingExpression !== undefined) {
    checks.push(check('subject (sub)', 'a claims-matching expression', show(best.claimsMatchingExpression), false, 'oz cannot evaluate flexible federated credentials; give the credential an exact subject'));
  } else {
    checks.push(check('subject (sub)', show(best.subject), show(claims.sub), best.subject !== undefined && claims.sub === best.subject, caseHint(best.subject, claims.sub)));
  }
  const aud = audiences(claims);
  checks.push(
    check('credential audiences', `exactly one: ${AZURE_AUDIENCE}`, show(best.audiences), best.audiences.length === 1, best.audiences.length === 1 ? undefined : 'Entra ID allows one audience per federated credential'),
    check('audience (aud)', show(best.audiences[0]), show(claims.aud), best.audiences[0] !== undefined && aud.includes(best.audiences[0])),
    ...headerChecks(token, AZURE_ALGS),
    ...timeChecks(claims, opts.now, 0),
  );
  return verdictOf('azure', checks, { credential: best.name });
}

function caseHint(expected: string | undefined, actual: unknown): string | undefined {
  if (expected === undefined || typeof actual !== 'string' || expected === actual) return undefined;
  if (expected.toLowerCase() === actual.toLowerCase()) return 'they differ only in case; Entra ID compares them case-sensitively';
  if (expected.replace(/\/+$/, '') === actual.replace(/\/+$/, '')) return 'they differ in a trailing slash; Entra ID compares them exactly';
  return undefined;
}
