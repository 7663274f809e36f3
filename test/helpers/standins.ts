// Local stand-ins for AWS STS and GCP STS (plus GCP's iamcredentials) that judge web identity
// tokens the way the real services do: OIDC discovery and JWKS fetched from the token's issuer,
// the signature checked with node:crypto (deliberately not with jose, which oz itself uses, so a
// bug shared by signer and verifier cannot hide), and the claims checked against the trust
// configuration. Errors come back in each service's wire format so that the real SDKs surface
// them as they would in production.
//
// Known, deliberate differences from the real services:
// - issuers are plain http on 127.0.0.1 (the real ones demand https and a public host);
// - discovery and JWKS are fetched on every request instead of being cached, so key rotation
//   is visible immediately;
// - AWS role trust is either an IAM trust policy document per role (`trustPolicies`, judged by
//   iam-policy.ts) or a predicate (`trustPolicy`); GCP's attribute mapping is fixed to the
//   default `google.subject = assertion.sub`.
import { createHash, createHmac, createPublicKey, randomBytes, randomUUID, timingSafeEqual, verify as cryptoVerify } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { evaluateTrustPolicy, sessionTagsFromClaims, validatePolicy, webIdentityContext } from './iam-policy.js';
import type { PolicyDecision, PolicyDocument, SessionTags } from './iam-policy.js';

// ---------------------------------------------------------------------------------------------
// Shared OIDC token verification

export type JwtHeader = Record<string, unknown> & { alg?: unknown; kid?: unknown };
export type JwtClaims = Record<string, unknown>;

export type RejectionReason =
  | 'malformed'
  | 'unsupported-alg'
  | 'missing-kid'
  | 'missing-claim'
  | 'untrusted-issuer'
  | 'idp-unreachable'
  | 'discovery-mismatch'
  | 'unknown-kid'
  | 'bad-signature'
  | 'audience'
  | 'expired'
  | 'not-yet-valid';

export class TokenRejected extends Error {
  constructor(
    readonly reason: RejectionReason,
    message: string,
    readonly header?: JwtHeader,
    readonly claims?: JwtClaims,
  ) {
    super(message);
  }
}

export interface VerifiedToken {
  header: JwtHeader;
  claims: JwtClaims;
  /** Public JWK that verified the signature. */
  jwk: JsonWebKey;
  /** Every check that passed, in order, so tests can see what was actually judged. */
  checks: string[];
}

interface VerifyOptions {
  trustedIssuers: readonly string[];
  /** Returns a message when the audience is not acceptable. */
  checkAudience: (aud: string[]) => string | undefined;
  clockSkewSeconds: number;
  nowMs: number;
  checks: string[];
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new TokenRejected('malformed', `the token's ${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenRejected('malformed', `the token's ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

async function fetchJson(url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
  } catch (err) {
    throw new TokenRejected('idp-unreachable', `could not fetch ${url}: ${(err as Error).message}`);
  }
  if (res.status !== 200) throw new TokenRejected('idp-unreachable', `${url} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch {
    throw new TokenRejected('idp-unreachable', `${url} did not return JSON`);
  }
}

function keyMatchesAlg(jwk: Record<string, unknown>, alg: string): boolean {
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (alg === 'RS256') return jwk.kty === 'RSA' && typeof jwk.n === 'string' && typeof jwk.e === 'string';
  return jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string';
}

/**
 * Verifies a compact JWS the way a relying party that trusts `trustedIssuers` must.
 * The token is taken exactly as received: any byte outside the base64url alphabet
 * (a trailing newline included) makes it malformed.
 */
export async function verifyWebIdentityToken(token: string, o: VerifyOptions): Promise<VerifiedToken> {
  const { checks } = o;
  const parts = token.split('.');
  if (parts.length !== 3 || !SEGMENT.test(parts[0]!) || !SEGMENT.test(parts[1]!) || !(parts[2] === '' || SEGMENT.test(parts[2]!))) {
    throw new TokenRejected('malformed', 'the token is not a compact JWS (three base64url segments, nothing else)');
  }
  const [h64, p64, s64] = parts as [string, string, string];
  const header = decodeSegment(h64, 'header') as JwtHeader;
  const claims = decodeSegment(p64, 'payload');
  const reject = (reason: RejectionReason, message: string): never => {
    throw new TokenRejected(reason, message, header, claims);
  };
  checks.push('format');

  if (header.alg !== 'RS256' && header.alg !== 'ES256') {
    reject('unsupported-alg', `the signing algorithm ${JSON.stringify(header.alg)} is not supported (RS256 or ES256 only)`);
  }
  const alg = header.alg as 'RS256' | 'ES256';
  if (typeof header.kid !== 'string' || header.kid === '') reject('missing-kid', 'the token header has no kid');
  const kid = header.kid as string;
  if (s64 === '') reject('bad-signature', 'the token is not signed');
  checks.push(`alg ${alg}`, 'kid present');

  for (const name of ['iss', 'sub'] as const) {
    if (typeof claims[name] !== 'string' || claims[name] === '') reject('missing-claim', `the token has no ${name} claim`);
  }
  for (const name of ['exp', 'iat'] as const) {
    if (typeof claims[name] !== 'number' || !Number.isFinite(claims[name])) reject('missing-claim', `the token has no numeric ${name} claim`);
  }
  const iss = claims.iss as string;
  if (!o.trustedIssuers.includes(iss)) reject('untrusted-issuer', `no OpenID Connect provider is configured for ${iss}`);
  checks.push('issuer trusted');

  const discoveryUrl = `${iss.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const discovery = (await fetchJson(discoveryUrl)) as Record<string, unknown> | null;
  if (typeof discovery !== 'object' || discovery === null) reject('idp-unreachable', `${discoveryUrl} is not a JSON object`);
  if (discovery!.issuer !== iss) {
    reject('discovery-mismatch', `the discovery document's issuer ${JSON.stringify(discovery!.issuer)} does not match the token's iss ${JSON.stringify(iss)}`);
  }
  if (typeof discovery!.jwks_uri !== 'string') reject('idp-unreachable', `${discoveryUrl} has no jwks_uri`);
  checks.push('discovery issuer matches');

  const jwks = (await fetchJson(discovery!.jwks_uri as string)) as { keys?: unknown } | null;
  if (!jwks || !Array.isArray(jwks.keys)) reject('idp-unreachable', `${String(discovery!.jwks_uri)} is not a JWK Set`);
  const candidates = (jwks!.keys as Record<string, unknown>[]).filter((k) => k && typeof k === 'object' && k.kid === kid);
  const jwk = candidates.find((k) => keyMatchesAlg(k, alg));
  if (!jwk) {
    reject('unknown-kid', candidates.length
      ? `the key ${kid} in the issuer's JWKS cannot verify ${alg}`
      : `no key with kid ${kid} in the issuer's JWKS`);
  }
  checks.push('key found');

  // Only the members that define the public key, so stray private members could never be used.
  const publicJwk: JsonWebKey = alg === 'RS256'
    ? { kty: 'RSA', n: jwk!.n as string, e: jwk!.e as string }
    : { kty: 'EC', crv: 'P-256', x: jwk!.x as string, y: jwk!.y as string };
  let valid = false;
  try {
    const key = createPublicKey({ key: publicJwk, format: 'jwk' });
    const signature = Buffer.from(s64, 'base64url');
    const input = Buffer.from(`${h64}.${p64}`, 'ascii');
    valid = alg === 'RS256'
      ? cryptoVerify('sha256', input, key, signature)
      : signature.length === 64 && cryptoVerify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    valid = false;
  }
  if (!valid) reject('bad-signature', 'the token signature does not verify with the issuer key');
  checks.push('signature');

  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : null;
  if (!auds || auds.length === 0) reject('audience', 'the token has no aud claim');
  const audProblem = o.checkAudience(auds!);
  if (audProblem) reject('audience', audProblem);
  checks.push('aud');

  const now = o.nowMs / 1000;
  const exp = claims.exp as number;
  if (now >= exp) reject('expired', `token expired: current date/time ${Math.floor(now)} must be before the expiration date/time ${exp}`);
  checks.push('exp');
  const iat = claims.iat as number;
  if (iat > now + o.clockSkewSeconds) reject('not-yet-valid', `the token's iat ${iat} is in the future (now ${Math.floor(now)})`);
  checks.push('iat');
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== 'number') reject('malformed', 'the token nbf claim is not a number');
    if ((claims.nbf as number) > now + o.clockSkewSeconds) reject('not-yet-valid', `the token is not valid before ${String(claims.nbf)} (now ${Math.floor(now)})`);
    checks.push('nbf');
  }
  return { header, claims, jwk: publicJwk, checks };
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

interface Started {
  url: string;
  close(): Promise<void>;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1 << 20) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => Promise<void>): Promise<Started> {
  const server = http.createServer((req, res) => {
    readBody(req)
      .then((body) => handler(req, res, body))
      .catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`stand-in failure: ${(err as Error).stack ?? String(err)}`);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Element text only (never attributes), so quotes stay readable in messages.
const xmlEscape = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);

const isoSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function basicClientId(authorization: string | undefined): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
  if (!m) return undefined;
  return Buffer.from(m[1]!, 'base64').toString('utf8').split(':')[0];
}

// ---------------------------------------------------------------------------------------------
// AWS STS

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

export interface AwsStsOptions {
  /** Issuer URLs registered as IAM OIDC providers. */
  trustedIssuers: string[];
  /** The provider's client ID list (one value here). */
  audience?: string;
  /** The role's MaxSessionDuration: an upper bound for DurationSeconds. */
  maxSessionDuration?: number;
  /** The role's trust policy conditions; false answers AccessDenied as IAM does. */
  trustPolicy?: (claims: JwtClaims, request: { roleArn: string; roleSessionName: string }) => boolean;
  /**
   * IAM trust policy documents by role ARN. When given, a role missing here does not exist and
   * every request for it is denied, as STS answers for an unknown role.
   */
  trustPolicies?: Record<string, PolicyDocument>;
  clockSkewSeconds?: number;
  /** Milliseconds since the epoch; lets tests move the stand-in's clock. */
  clock?: () => number;
}

export interface AwsIssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  roleArn: string;
  roleSessionName: string;
  subject: string;
  assumedRoleArn: string;
  /** Session tags taken from the token (STS does not echo them; the stand-in keeps them here). */
  sessionTags?: SessionTags;
}

export interface AwsStsRequest {
  action: string | undefined;
  status: number;
  ok: boolean;
  errorCode?: string;
  errorMessage?: string;
  /** The decoded form parameters, the token byte-exact. */
  params: Record<string, string>;
  userAgent?: string;
  roleArn?: string;
  roleSessionName?: string;
  durationSeconds?: number;
  header?: JwtHeader;
  claims?: JwtClaims;
  subject?: string;
  checks: string[];
  sessionTags?: SessionTags;
  /** How the role's trust policy document judged the request, when there is one. */
  policyDecision?: PolicyDecision;
  credentials?: AwsIssuedCredentials;
}

export interface AwsStsStandIn {
  url: string;
  requests: AwsStsRequest[];
  /** Credentials handed out, by access key ID. */
  issued: Map<string, AwsIssuedCredentials>;
  close(): Promise<void>;
}

class StsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const ROLE_ARN = /^arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]{1,64})$/;
const SESSION_NAME = /^[\w+=,.@-]*$/;

function validateAssumeRoleWithWebIdentity(p: Record<string, string>, maxSessionDuration: number): number | undefined {
  const problems: string[] = [];
  const value = (field: string, v: string, constraint: string) =>
    problems.push(`Value '${v}' at '${field}' failed to satisfy constraint: ${constraint}`);
  const role = p.RoleArn;
  const session = p.RoleSessionName;
  const token = p.WebIdentityToken;
  if (role === undefined) problems.push("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
  else if (role.length < 20 || role.length > 2048) value('roleArn', role, 'Member must have length between 20 and 2048');
  if (session === undefined) problems.push("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
  else {
    if (session.length < 2) value('roleSessionName', session, 'Member must have length greater than or equal to 2');
    if (session.length > 64) value('roleSessionName', session, 'Member must have length less than or equal to 64');
    if (!SESSION_NAME.test(session)) value('roleSessionName', session, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
  }
  if (token === undefined) problems.push("Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null");
  else if (token.length < 4 || token.length > 20000) problems.push("Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000");
  let duration: number | undefined;
  if (p.DurationSeconds !== undefined) {
    duration = /^\d+$/.test(p.DurationSeconds) ? Number(p.DurationSeconds) : NaN;
    if (Number.isNaN(duration)) problems.push(`Value '${p.DurationSeconds}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer`);
    else if (duration < 900) value('durationSeconds', p.DurationSeconds, 'Member must have value greater than or equal to 900');
    else if (duration > 43200) value('durationSeconds', p.DurationSeconds, 'Member must have value less than or equal to 43200');
  }
  if (problems.length) {
    const n = problems.length;
    throw new StsError('ValidationError', `${n} validation error${n > 1 ? 's' : ''} detected: ${problems.join('; ')}`);
  }
  if (!ROLE_ARN.test(role!)) throw new StsError('ValidationError', 'Request ARN is invalid');
  if (duration !== undefined && duration > maxSessionDuration) {
    throw new StsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }
  return duration;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const randomBase32 = (n: number) => Array.from(randomBytes(n), (b) => BASE32[b & 31]).join('');

function sigV4Check(req: http.IncomingMessage, body: string, secretFor: (akid: string) => string | undefined): string {
  // Recomputes the SigV4 signature so that GetCallerIdentity proves the caller holds the
  // secret this stand-in issued, as the real service does.
  const auth = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw new StsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
  const [, akid, date, region, service, signedHeaders, signature] = m as unknown as string[];
  const secret = secretFor(akid!);
  if (!secret) throw new StsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const url = new URL(req.url ?? '/', 'http://x');
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = [...url.searchParams].map(([k, v]) => `${enc(k)}=${enc(v)}`).sort().join('&');
  const headerLines = signedHeaders!.split(';').map((h) => {
    const raw = req.headers[h];
    const v = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
    return `${h}:${String(v).trim().replace(/\s+/g, ' ')}\n`;
  });
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? createHash('sha256').update(body).digest('hex'));
  const canonical = [req.method, url.pathname, query, headerLines.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(date!).digest();
  for (const part of [region!, service!, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const expected = createHmac('sha256', key).update(toSign).digest();
  const given = Buffer.from(signature!, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new StsError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.', 403);
  }
  return akid!;
}

export async function startAwsSts(opts: AwsStsOptions): Promise<AwsStsStandIn> {
  const audience = opts.audience ?? 'sts.amazonaws.com';
  const maxSessionDuration = opts.maxSessionDuration ?? 3600;
  const clock = opts.clock ?? Date.now;
  // A malformed document is refused when it is set up, as IAM refuses to save it.
  for (const policy of Object.values(opts.trustPolicies ?? {})) validatePolicy(policy);
  const requests: AwsStsRequest[] = [];
  const issued = new Map<string, AwsIssuedCredentials>();

  const reply = (res: http.ServerResponse, status: number, xml: string) => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
    res.end(xml);
  };
  const replyError = (res: http.ServerResponse, err: StsError) =>
    reply(
      res,
      err.status,
      `<ErrorResponse xmlns="${STS_NS}">\n  <Error>\n    <Type>Sender</Type>\n    <Code>${xmlEscape(err.code)}</Code>\n    <Message>${xmlEscape(err.message)}</Message>\n  </Error>\n  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`,
    );

  const assumeRoleWithWebIdentity = async (p: Record<string, string>, record: AwsStsRequest): Promise<string> => {
    record.roleArn = p.RoleArn;
    record.roleSessionName = p.RoleSessionName;
    const duration = validateAssumeRoleWithWebIdentity(p, maxSessionDuration);
    record.durationSeconds = duration;
    record.checks.push('parameters');
    let verified: VerifiedToken;
    try {
      verified = await verifyWebIdentityToken(p.WebIdentityToken!, {
        trustedIssuers: opts.trustedIssuers,
        checkAudience: (auds) => (auds.includes(audience) ? undefined : 'Incorrect token audience'),
        clockSkewSeconds: opts.clockSkewSeconds ?? 60,
        nowMs: clock(),
        checks: record.checks,
      });
    } catch (err) {
      if (!(err instanceof TokenRejected)) throw err;
      record.header = err.header;
      record.claims = err.claims;
      if (err.reason === 'expired') throw new StsError('ExpiredTokenException', `Token expired: ${err.message.replace(/^token expired: /, '')}`);
      if (err.reason === 'idp-unreachable') throw new StsError('IDPCommunicationError', `Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements: ${err.message}`);
      if (err.reason === 'untrusted-issuer') throw new StsError('InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${String(err.claims?.iss)}`);
      throw new StsError('InvalidIdentityToken', err.message === 'Incorrect token audience' ? err.message : `${err.message[0]!.toUpperCase()}${err.message.slice(1)}`);
    }
    const { claims, header } = verified;
    record.header = header;
    record.claims = claims;
    record.subject = claims.sub as string;
    const roleArn = p.RoleArn!;
    const roleSessionName = p.RoleSessionName!;
    let sessionTags: SessionTags | undefined;
    try {
      sessionTags = sessionTagsFromClaims(claims);
    } catch (err) {
      throw new StsError('InvalidIdentityToken', `Invalid session tags in the web identity token: ${(err as Error).message}`);
    }
    record.sessionTags = sessionTags;
    if (sessionTags) record.checks.push('session tags');
    const [, account, roleName] = ROLE_ARN.exec(roleArn)!;
    const partition = roleArn.split(':')[1]!;
    const denied = () => new StsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);
    if (opts.trustPolicy && !opts.trustPolicy(claims, { roleArn, roleSessionName })) throw denied();
    if (opts.trustPolicies) {
      const policy = opts.trustPolicies[roleArn];
      if (!policy) throw denied();
      const actions = ['sts:AssumeRoleWithWebIdentity', ...(sessionTags ? ['sts:TagSession'] : [])];
      const context = webIdentityContext({ account: account!, partition, issuer: claims.iss as string, aud: audience, sub: record.subject, sessionTags });
      record.policyDecision = evaluateTrustPolicy(policy, actions, context);
      if (!record.policyDecision.allowed) throw denied();
    }
    record.checks.push('trust policy');

    const roleId = `AROA${createHash('sha256').update(roleArn).digest('hex').slice(0, 17).toUpperCase()}`;
    const assumedRoleArn = `arn:${partition}:sts::${account}:assumed-role/${roleName}/${roleSessionName}`;
    const creds: AwsIssuedCredentials = {
      accessKeyId: `ASIA${randomBase32(16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `StandIn//${randomBytes(96).toString('base64')}`,
      expiration: isoSeconds(clock() + (duration ?? 3600) * 1000),
      roleArn,
      roleSessionName,
      subject: record.subject,
      assumedRoleArn,
      sessionTags,
    };
    issued.set(creds.accessKeyId, creds);
    record.credentials = creds;
    const aud = Array.isArray(claims.aud) ? audience : String(claims.aud);
    return `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NS}">
  <AssumeRoleWithWebIdentityResult>
    <Audience>${xmlEscape(aud)}</Audience>
    <AssumedRoleUser>
      <AssumedRoleId>${roleId}:${xmlEscape(roleSessionName)}</AssumedRoleId>
      <Arn>${xmlEscape(assumedRoleArn)}</Arn>
    </AssumedRoleUser>
    <Provider>${xmlEscape(String(claims.iss))}</Provider>
    <Credentials>
      <AccessKeyId>${creds.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${creds.secretAccessKey}</SecretAccessKey>
      <SessionToken>${creds.sessionToken}</SessionToken>
      <Expiration>${creds.expiration}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>${xmlEscape(record.subject)}</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`;
  };

  const getCallerIdentity = (req: http.IncomingMessage, body: string, record: AwsStsRequest): string => {
    const akid = sigV4Check(req, body, (id) => issued.get(id)?.secretAccessKey);
    const creds = issued.get(akid)!;
    if (req.headers['x-amz-security-token'] !== creds.sessionToken) {
      throw new StsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
    }
    if (Date.parse(creds.expiration) <= clock()) throw new StsError('ExpiredToken', 'The security token included in the request is expired', 403);
    record.checks.push('sigv4', 'session token');
    record.roleArn = creds.roleArn;
    record.roleSessionName = creds.roleSessionName;
    record.subject = creds.subject;
    const account = creds.roleArn.split(':')[4]!;
    const roleId = `AROA${createHash('sha256').update(creds.roleArn).digest('hex').slice(0, 17).toUpperCase()}`;
    return `<GetCallerIdentityResponse xmlns="${STS_NS}">
  <GetCallerIdentityResult>
    <Arn>${xmlEscape(creds.assumedRoleArn)}</Arn>
    <UserId>${roleId}:${xmlEscape(creds.roleSessionName)}</UserId>
    <Account>${account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`;
  };

  const started = await listen(async (req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const record: AwsStsRequest = { action: undefined, status: 0, ok: false, params: {}, checks: [], userAgent: req.headers['user-agent'] };
    requests.push(record);
    try {
      if (req.method === 'POST' && contentType !== 'application/x-www-form-urlencoded') {
        // Only the awsQuery protocol is implemented: make a client that moved to another protocol fail loudly.
        throw new StsError('StandInUnsupportedProtocol', `this stand-in speaks the awsQuery protocol only; got content-type ${JSON.stringify(contentType)}`);
      }
      // URLSearchParams decodes without trimming, so the token is judged byte for byte as sent.
      const params = Object.fromEntries(req.method === 'POST' ? new URLSearchParams(body) : url.searchParams);
      record.params = params;
      record.action = params.Action;
      if (url.pathname !== '/') throw new StsError('InvalidAction', `Could not find operation for path ${url.pathname}`);
      if (params.Version !== '2011-06-15') throw new StsError('InvalidAction', `Could not find operation ${String(params.Action)} for version ${String(params.Version)}`);
      let xml: string;
      if (params.Action === 'AssumeRoleWithWebIdentity') xml = await assumeRoleWithWebIdentity(params, record);
      else if (params.Action === 'GetCallerIdentity') xml = getCallerIdentity(req, body, record);
      else throw new StsError('InvalidAction', `Could not find operation ${String(params.Action)} for version 2011-06-15`);
      record.status = 200;
      record.ok = true;
      reply(res, 200, xml);
    } catch (err) {
      if (!(err instanceof StsError)) throw err;
      record.status = err.status;
      record.errorCode = err.code;
      record.errorMessage = err.message;
      replyError(res, err);
    }
  });
  return { url: started.url, requests, issued, close: started.close };
}

// ---------------------------------------------------------------------------------------------
// GCP STS and iamcredentials

const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
const PROVIDER_AUDIENCE = /^\/\/iam\.googleapis\.com\/(projects\/(\d+)\/locations\/global\/workloadIdentityPools\/([a-z0-9-]{4,32})\/providers\/([a-z0-9-]{4,32}))$/;

export interface GcpStsOptions {
  trustedIssuer: string;
  /** The provider's full resource name, `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`. */
  audience: string;
  /** The provider's allowed audiences; by default GCP's: the provider name with an `https:` prefix. */
  allowedAudiences?: string[];
  /** The provider's attribute condition, over the token's claims. */
  attributeCondition?: (claims: JwtClaims) => boolean;
  /** Who may be impersonated, as `roles/iam.workloadIdentityUser` bindings would allow; default anyone. */
  canImpersonate?: (serviceAccount: string, principal: { subject: string; claims: JwtClaims }) => boolean;
  /** Lifetime of the federated access tokens handed out. */
  accessTokenLifetimeSeconds?: number;
  clockSkewSeconds?: number;
  clock?: () => number;
}

export interface GcpIssuedToken {
  accessToken: string;
  kind: 'federated' | 'service-account';
  subject: string;
  principal: string;
  claims: JwtClaims;
  scopes: string[];
  expiresAtMs: number;
  serviceAccount?: string;
}

export interface GcpStsRequest {
  endpoint: 'token' | 'introspect' | 'generateAccessToken' | 'unknown';
  path: string;
  status: number;
  ok: boolean;
  error?: string;
  errorDescription?: string;
  /** Decoded form (or JSON) parameters, the subject token byte-exact. */
  params: Record<string, unknown>;
  /** Client ID of HTTP Basic client authentication, when sent (gcloud sends its own). */
  clientId?: string;
  userAgent?: string;
  header?: JwtHeader;
  claims?: JwtClaims;
  subject?: string;
  scopes?: string[];
  serviceAccount?: string;
  checks: string[];
  issued?: GcpIssuedToken;
}

export interface GcpStsStandIn {
  url: string;
  /** `token_url` for the credential configuration. */
  tokenUrl: string;
  /** `token_info_url` for the credential configuration (what gcloud introspects with). */
  tokenInfoUrl: string;
  /** `service_account_impersonation_url` for a service account. */
  impersonationUrl(serviceAccount: string): string;
  requests: GcpStsRequest[];
  issued: Map<string, GcpIssuedToken>;
  close(): Promise<void>;
}

class OAuthError extends Error {
  constructor(
    readonly error: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

class GoogleApiError extends Error {
  constructor(
    readonly status: number,
    readonly grpcStatus: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startGcpSts(opts: GcpStsOptions): Promise<GcpStsStandIn> {
  const provider = PROVIDER_AUDIENCE.exec(opts.audience);
  if (!provider) throw new Error(`not a workload identity provider name: ${opts.audience}`);
  const [, resource, projectNumber, poolId] = provider as unknown as [string, string, string, string];
  const allowed = opts.allowedAudiences ?? [`https://iam.googleapis.com/${resource}`, opts.audience];
  const clock = opts.clock ?? Date.now;
  const lifetime = opts.accessTokenLifetimeSeconds ?? 3600;
  const requests: GcpStsRequest[] = [];
  const issued = new Map<string, GcpIssuedToken>();

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };

  const exchange = async (p: Record<string, string>, record: GcpStsRequest) => {
    if (p.grant_type !== GRANT_TYPE_TOKEN_EXCHANGE) throw new OAuthError('unsupported_grant_type', `Invalid value for "grant_type": ${JSON.stringify(p.grant_type ?? null)}`);
    if (p.requested_token_type !== TOKEN_TYPE_ACCESS_TOKEN) throw new OAuthError('invalid_request', 'Invalid value for "requested_token_type"');
    if (!p.subject_token) throw new OAuthError('invalid_request', 'Missing value for "subject_token"');
    if (!SUBJECT_TOKEN_TYPES.includes(p.subject_token_type ?? '')) throw new OAuthError('invalid_request', `Invalid value for "subject_token_type": ${JSON.stringify(p.subject_token_type ?? null)}`);
    if (p.options !== undefined) {
      try {
        record.params.options = JSON.parse(p.options);
      } catch {
        throw new OAuthError('invalid_request', 'Invalid value for "options": not JSON');
      }
    }
    if (p.audience !== opts.audience) {
      throw new OAuthError('invalid_target', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.');
    }
    record.checks.push('request', 'provider audience');
    const scopes = (p.scope ?? '').split(/\s+/).filter(Boolean);
    record.scopes = scopes;

    let verified: VerifiedToken;
    try {
      verified = await verifyWebIdentityToken(p.subject_token, {
        trustedIssuers: [opts.trustedIssuer],
        checkAudience: (auds) => (auds.some((a) => allowed.includes(a)) ? undefined : `The audience in ID Token [${auds.join(', ')}] does not match the expected audience.`),
        clockSkewSeconds: opts.clockSkewSeconds ?? 60,
        nowMs: clock(),
        checks: record.checks,
      });
    } catch (err) {
      if (!(err instanceof TokenRejected)) throw err;
      record.header = err.header;
      record.claims = err.claims;
      throw new OAuthError('invalid_grant', err.message);
    }
    const { claims, header } = verified;
    record.header = header;
    record.claims = claims;
    const subject = claims.sub as string;
    record.subject = subject;
    if (Buffer.byteLength(subject) > 127) {
      throw new OAuthError('invalid_grant', 'The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify your attribute mapping or the incoming assertion to produce a shorter subject.');
    }
    record.checks.push('google.subject');
    if (opts.attributeCondition) {
      let pass = false;
      try {
        pass = opts.attributeCondition(claims) === true;
      } catch {
        pass = false;
      }
      if (!pass) throw new OAuthError('invalid_grant', 'The given credential is rejected by the attribute condition.');
      record.checks.push('attribute condition');
    }
    const token: GcpIssuedToken = {
      accessToken: `ya29.standin.${randomBytes(32).toString('base64url')}`,
      kind: 'federated',
      subject,
      principal: `principal://iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/${poolId}/subject/${subject}`,
      claims,
      scopes,
      expiresAtMs: clock() + lifetime * 1000,
    };
    issued.set(token.accessToken, token);
    record.issued = token;
    return {
      access_token: token.accessToken,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: 'Bearer',
      expires_in: lifetime,
    };
  };

  const introspect = (p: Record<string, string>, record: GcpStsRequest) => {
    if (!p.token) throw new OAuthError('invalid_request', 'Missing value for "token"');
    const t = issued.get(p.token);
    if (!t || t.expiresAtMs <= clock()) return { active: false };
    record.subject = t.subject;
    record.checks.push('token issued here');
    return {
      active: true,
      scope: t.scopes.join(' '),
      exp: Math.floor(t.expiresAtMs / 1000),
      iat: Math.floor(t.expiresAtMs / 1000) - lifetime,
      username: t.principal,
      sub: t.subject,
    };
  };

  const generateAccessToken = (req: http.IncomingMessage, body: string, serviceAccount: string, record: GcpStsRequest) => {
    record.serviceAccount = serviceAccount;
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const caller = bearer ? issued.get(bearer) : undefined;
    if (!caller || caller.expiresAtMs <= clock()) {
      throw new GoogleApiError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
    }
    record.subject = caller.subject;
    record.checks.push('caller token');
    if (!caller.scopes.some((s) => s === 'https://www.googleapis.com/auth/cloud-platform' || s === 'https://www.googleapis.com/auth/iam')) {
      throw new GoogleApiError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.');
    }
    let input: { scope?: unknown; lifetime?: unknown };
    try {
      input = JSON.parse(body || '{}') as typeof input;
      record.params = input as Record<string, unknown>;
    } catch {
      throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    }
    const scopes = typeof input.scope === 'string' ? [input.scope] : input.scope;
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string')) {
      throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'Scope required.');
    }
    let seconds = 3600;
    if (input.lifetime !== undefined) {
      const m = /^(\d+)(?:\.\d+)?s$/.exec(String(input.lifetime));
      if (!m) throw new GoogleApiError(400, 'INVALID_ARGUMENT', `Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(input.lifetime)}`);
      seconds = Number(m[1]);
      if (seconds < 1 || seconds > 3600) {
        throw new GoogleApiError(400, 'INVALID_ARGUMENT', 'The lifetime of the requested token must be between 1 second and 3600 seconds.');
      }
    }
    if (opts.canImpersonate && !opts.canImpersonate(serviceAccount, { subject: caller.subject, claims: caller.claims })) {
      throw new GoogleApiError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    }
    record.checks.push('impersonation allowed');
    record.scopes = scopes as string[];
    const token: GcpIssuedToken = {
      accessToken: `ya29.standin-sa.${randomBytes(32).toString('base64url')}`,
      kind: 'service-account',
      subject: caller.subject,
      principal: caller.principal,
      claims: caller.claims,
      scopes: scopes as string[],
      expiresAtMs: clock() + seconds * 1000,
      serviceAccount,
    };
    issued.set(token.accessToken, token);
    record.issued = token;
    return { accessToken: token.accessToken, expireTime: isoSeconds(token.expiresAtMs) };
  };

  const started = await listen(async (req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const record: GcpStsRequest = {
      endpoint: 'unknown',
      path: url.pathname,
      status: 0,
      ok: false,
      params: {},
      checks: [],
      clientId: basicClientId(req.headers.authorization),
      userAgent: req.headers['user-agent'],
    };
    requests.push(record);
    const formParams = (): Record<string, string> => {
      if (contentType === 'application/json') {
        try {
          const parsed = JSON.parse(body) as Record<string, unknown>;
          return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
        } catch {
          throw new OAuthError('invalid_request', 'Invalid JSON payload received.');
        }
      }
      // No trimming: the subject token is judged exactly as the client sent it.
      return Object.fromEntries(new URLSearchParams(body));
    };
    const impersonate = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url.pathname);
    try {
      let answer: unknown;
      if (req.method === 'POST' && url.pathname === '/v1/token') {
        record.endpoint = 'token';
        const p = formParams();
        record.params = { ...p };
        answer = await exchange(p, record);
      } else if (req.method === 'POST' && url.pathname === '/v1/introspect') {
        record.endpoint = 'introspect';
        const p = formParams();
        record.params = { ...p };
        answer = introspect(p, record);
      } else if (req.method === 'POST' && impersonate) {
        record.endpoint = 'generateAccessToken';
        answer = generateAccessToken(req, body, decodeURIComponent(impersonate[1]!), record);
      } else {
        throw new GoogleApiError(404, 'NOT_FOUND', `no such endpoint: ${req.method} ${url.pathname}`);
      }
      record.status = 200;
      record.ok = true;
      json(res, 200, answer);
    } catch (err) {
      if (err instanceof OAuthError) {
        record.status = err.status;
        record.error = err.error;
        record.errorDescription = err.message;
        json(res, err.status, { error: err.error, error_description: err.message });
      } else if (err instanceof GoogleApiError) {
        record.status = err.status;
        record.error = err.grpcStatus;
        record.errorDescription = err.message;
        json(res, err.status, { error: { code: err.status, message: err.message, status: err.grpcStatus } });
      } else {
        throw err;
      }
    }
  });

  return {
    url: started.url,
    tokenUrl: `${started.url}/v1/token`,
    tokenInfoUrl: `${started.url}/v1/introspect`,
    impersonationUrl: (sa) => `${started.url}/v1/projects/-/serviceAccounts/${sa}:generateAccessToken`,
    requests,
    issued,
    close: started.close,
  };
}
