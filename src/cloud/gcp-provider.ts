import { createPublicKey, verify as cryptoVerify, type JsonWebKey } from 'node:crypto';
import { run, isCelError, isCelList, isCelMap, celMethod, CelScalar, type CelFunc, type CelInput, type CelValue } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { OzError } from '../core/errors.js';
import type { DecodedJwt } from '../core/jwt.js';
import { isObject, parseJson } from './json.js';
import { audiences, headerChecks, timeChecks } from './token-checks.js';
import { check, show, verdictOf, type Check, type Verdict } from './verdict.js';

/** The algorithms Google's STS accepts from an OIDC provider. */
const GCP_ALGS = ['RS256', 'ES256'];
/** STS refuses a `google.subject` longer than this many bytes (UTF-8). */
export const MAX_GOOGLE_SUBJECT_BYTES = 127;
/** STS refuses a token whose `exp - iat` reaches this. */
export const MAX_GCP_TOKEN_LIFETIME_SECONDS = 48 * 3600;

export interface GcpProvider {
  /** `projects/N/locations/global/workloadIdentityPools/P/providers/Q`. */
  name?: string;
  issuerUri: string;
  allowedAudiences: string[];
  jwksJson?: string;
  attributeMapping: Record<string, string>;
  attributeCondition?: string;
  state?: string;
  disabled?: boolean;
}

/** `gcloud iam workload-identity-pools providers describe --format=json` output. */
export function parseGcpProvider(text: string, what: string): GcpProvider {
  const bad = (why: string): never => {
    throw new OzError('usage', `${what} is not a workload identity pool provider: ${why}`);
  };
  const doc = parseJson(text, what);
  if (!isObject(doc)) return bad('expected the JSON object that `gcloud iam workload-identity-pools providers describe --format=json` prints');
  const oidc = doc.oidc;
  if (!isObject(oidc)) return bad(isObject(doc.saml) ? 'it is a SAML provider; oz tokens need an OIDC provider' : 'it has no oidc section');
  if (typeof oidc.issuerUri !== 'string' || oidc.issuerUri === '') bad('oidc.issuerUri is missing');
  const allowed = oidc.allowedAudiences ?? [];
  if (!Array.isArray(allowed) || !allowed.every((a) => typeof a === 'string')) bad('oidc.allowedAudiences must be a list of strings');
  const mapping = doc.attributeMapping ?? {};
  if (!isObject(mapping) || !Object.values(mapping).every((v) => typeof v === 'string')) bad('attributeMapping must map attribute names to CEL expressions');
  if (doc.attributeCondition !== undefined && typeof doc.attributeCondition !== 'string') bad('attributeCondition must be a CEL expression');
  if (doc.name !== undefined && (typeof doc.name !== 'string' || !PROVIDER_NAME.test(doc.name))) {
    bad('name must be projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER');
  }
  if ((allowed as string[]).length === 0 && doc.name === undefined) bad('with no oidc.allowedAudiences the provider\'s name is needed to know its audience');
  return {
    ...(typeof doc.name === 'string' ? { name: doc.name } : {}),
    issuerUri: oidc.issuerUri as string,
    allowedAudiences: allowed as string[],
    ...(typeof oidc.jwksJson === 'string' && oidc.jwksJson !== '' ? { jwksJson: oidc.jwksJson } : {}),
    attributeMapping: mapping as Record<string, string>,
    ...(typeof doc.attributeCondition === 'string' && doc.attributeCondition !== '' ? { attributeCondition: doc.attributeCondition } : {}),
    ...(typeof doc.state === 'string' ? { state: doc.state } : {}),
    ...(typeof doc.disabled === 'boolean' ? { disabled: doc.disabled } : {}),
  };
}

const PROVIDER_NAME = /^projects\/[^/]+\/locations\/[^/]+\/workloadIdentityPools\/[^/]+\/providers\/[^/]+$/;

/**
 * The audiences the provider accepts: its allowed audiences, or, only when that list is
 * empty, its own full resource name, with or without `https:` in front.
 */
export function acceptedAudiences(provider: GcpProvider): string[] {
  if (provider.allowedAudiences.length > 0) return provider.allowedAudiences;
  const full = `//iam.googleapis.com/${provider.name ?? ''}`;
  return [`https:${full}`, full];
}

export type CelOutcome = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * `extract(template)`, the function Google adds to CEL for attribute mappings: the part of
 * the string that `{name}` stands for in the template, the text around it matched literally
 * (the first occurrence of the text before, then the text after); an empty string when the
 * template does not match.
 */
const extract = celMethod('extract', CelScalar.STRING, [CelScalar.STRING], CelScalar.STRING, function (this: string, template: string) {
  const m = /^([\s\S]*?)\{[^{}]*\}([\s\S]*)$/.exec(template);
  if (!m) return '';
  const [, before = '', after = ''] = m;
  const start = this.indexOf(before);
  if (start < 0) return '';
  const rest = this.slice(start + before.length);
  if (after === '') return rest;
  const end = rest.indexOf(after);
  return end < 0 ? '' : rest.slice(0, end);
});

/** CEL as Google's attribute mappings and conditions speak it: the standard library, string extensions and extract(). */
const GCP_CEL_FUNCS: CelFunc[] = [...strings, extract];

/** Evaluates a CEL expression with @bufbuild/cel; a parse or evaluation error is data, not a throw. */
export function evaluateCel(expression: string, bindings: Record<string, unknown>): CelOutcome {
  let result: CelValue | Error;
  try {
    result = run(expression, bindings as Record<string, CelInput>, { funcs: GCP_CEL_FUNCS });
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  if (isCelError(result)) return { ok: false, error: result.message };
  return { ok: true, value: plain(result as CelValue) };
}

/** CEL's values as JSON-like ones, for display and for binding into the condition. */
function plain(v: CelValue): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (isCelList(v)) return Array.from(v, plain);
  if (isCelMap(v)) return Object.fromEntries(Array.from(v.entries(), ([k, x]) => [String(k), plain(x)]));
  return v;
}

export interface EvaluateGcpOptions {
  now: Date;
}

/**
 * Would Google's STS exchange this token at this provider? The checks STS makes, in its
 * order: the provider is active, the issuer, the audience, the signature algorithm and key,
 * the times and lifetime, then the attribute mapping (`google.subject` at most 127 bytes)
 * and the attribute condition, both CEL over `assertion` (the token's claims).
 */
export function evaluateGcpProvider(provider: GcpProvider, token: DecodedJwt, opts: EvaluateGcpOptions): Verdict {
  const claims = token.payload;
  const checks: Check[] = [];
  if (provider.state !== undefined || provider.disabled !== undefined) {
    const active = provider.state === undefined || provider.state === 'ACTIVE';
    checks.push(check('provider state', 'ACTIVE, not disabled', `${provider.state ?? '(unknown)'}${provider.disabled ? ', disabled' : ''}`, active && provider.disabled !== true));
  }
  checks.push(
    check(
      'issuer (iss)',
      provider.issuerUri,
      show(claims.iss),
      claims.iss === provider.issuerUri,
      claims.iss === provider.issuerUri || typeof claims.iss !== 'string' || claims.iss.replace(/\/+$/, '') !== provider.issuerUri.replace(/\/+$/, '')
        ? undefined
        : 'the provider\'s issuer URI must equal iss exactly, trailing slash included',
    ),
  );
  const accepted = acceptedAudiences(provider);
  const aud = audiences(claims);
  checks.push(
    check(
      'audience (aud)',
      accepted.length === 1 ? (accepted[0] as string) : `one of ${accepted.join(', ')}`,
      show(claims.aud),
      aud.some((a) => accepted.includes(a)),
      provider.allowedAudiences.length === 0 ? 'the provider has no allowed audiences, so only its own resource name is accepted' : undefined,
    ),
  );
  checks.push(...headerChecks(token, GCP_ALGS));
  if (provider.jwksJson !== undefined) checks.push(signatureCheck(token, provider.jwksJson));
  checks.push(...timeChecks(claims, opts.now, 0));
  const { iat, exp } = claims;
  const lifetime = typeof iat === 'number' && typeof exp === 'number' ? exp - iat : undefined;
  checks.push(
    check(
      'lifetime (exp - iat)',
      `under ${MAX_GCP_TOKEN_LIFETIME_SECONDS / 3600} h`,
      lifetime === undefined ? 'unknown (exp or iat missing)' : `${lifetime} s`,
      lifetime !== undefined && lifetime < MAX_GCP_TOKEN_LIFETIME_SECONDS,
    ),
  );

  const { attributes, checks: mappingChecks } = mapAttributes(provider.attributeMapping, claims);
  checks.push(...mappingChecks);
  if (provider.attributeCondition !== undefined) {
    const google: Record<string, unknown> = {};
    const attribute: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(attributes)) {
      if (name.startsWith('google.')) google[name.slice('google.'.length)] = value;
      else if (name.startsWith('attribute.')) attribute[name.slice('attribute.'.length)] = value;
    }
    const r = evaluateCel(provider.attributeCondition, { assertion: claims, google, attribute });
    checks.push(
      check(
        'attribute condition',
        `${provider.attributeCondition} is true`,
        r.ok ? show(r.value) : `error: ${r.error}`,
        r.ok && r.value === true,
        r.ok ? undefined : 'an attribute condition that fails to evaluate refuses the token',
      ),
    );
  }
  const outcome = typeof attributes['google.subject'] === 'string' ? { attributes, principal: principalOf(provider, attributes['google.subject'] as string) } : { attributes };
  return verdictOf('gcp', checks, outcome);
}

function mapAttributes(mapping: Record<string, string>, claims: Record<string, unknown>): { attributes: Record<string, unknown>; checks: Check[] } {
  const attributes: Record<string, unknown> = {};
  const checks: Check[] = [];
  if (mapping['google.subject'] === undefined) {
    checks.push(check('attribute mapping google.subject', 'a mapping for google.subject', '(none)', false, 'every provider must map google.subject'));
  }
  for (const [name, expression] of Object.entries(mapping)) {
    const r = evaluateCel(expression, { assertion: claims });
    if (!r.ok) {
      checks.push(check(`attribute mapping ${name}`, `${expression} evaluates`, `error: ${r.error}`, false, 'a mapping that fails to evaluate refuses the token; guard optional claims with has(assertion.X)'));
      continue;
    }
    attributes[name] = r.value;
    if (name === 'google.subject') {
      const ok = typeof r.value === 'string' && Buffer.byteLength(r.value, 'utf8') <= MAX_GOOGLE_SUBJECT_BYTES;
      const actual = typeof r.value === 'string' ? `${r.value} (${Buffer.byteLength(r.value, 'utf8')} bytes)` : show(r.value);
      checks.push(check(`attribute mapping google.subject = ${expression}`, `a string of at most ${MAX_GOOGLE_SUBJECT_BYTES} bytes`, actual, ok));
    } else {
      checks.push(check(`attribute mapping ${name} = ${expression}`, 'evaluates', show(r.value), true));
    }
  }
  return { attributes, checks };
}

function principalOf(provider: GcpProvider, subject: string): string | undefined {
  const pool = provider.name?.replace(/\/providers\/[^/]+$/, '');
  return pool === undefined ? undefined : `principal://iam.googleapis.com/${pool}/subject/${subject}`;
}

/** With the JWKS in the provider (an issuer that is not public), the signature can be checked here. */
function signatureCheck(token: DecodedJwt, jwksJson: string): Check {
  const name = 'signature (against the provider\'s jwksJson)';
  let keys: unknown;
  try {
    keys = (JSON.parse(jwksJson) as { keys?: unknown }).keys;
  } catch {
    return check(name, 'a JWKS holding the token\'s kid', 'oidc.jwksJson is not JSON', false);
  }
  const list = Array.isArray(keys) ? keys.filter(isObject) : [];
  const kid = token.header.kid;
  const jwk = list.find((k) => k.kid === kid);
  if (jwk === undefined) return check(name, `a key with kid ${show(kid)}`, `kids ${show(list.map((k) => k.kid))}`, false, 'upload the issuer\'s current JWKS again (oz issuer jwks)');
  try {
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    const alg = token.header.alg;
    const ok = cryptoVerify('sha256', Buffer.from(token.signingInput), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, token.signature);
    return check(name, `valid, key ${show(kid)}`, ok ? 'valid' : 'invalid', ok);
  } catch (e) {
    return check(name, `valid, key ${show(kid)}`, `unusable key: ${e instanceof Error ? e.message : String(e)}`, false);
  }
}
