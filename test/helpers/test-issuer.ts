// A throwaway OpenID Connect issuer for exercising the STS stand-ins.
// It shares no code with oz on purpose: the stand-ins must be proven against an
// issuer that is known to be correct (and deliberately wrong on demand) before
// they are trusted to judge oz's own tokens.
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type TestAlg = 'RS256' | 'ES256';

export interface SignOptions {
  /** Algorithm written in the header and used to sign. `none` and `HS256` produce the classic forged tokens. */
  alg?: TestAlg | 'none' | 'HS256';
  /** `kid` in the header; `null` leaves it out. Defaults to the kid of the published key for `alg`. */
  kid?: string | null;
  /** Sign with a key that is not published (with the published kid unless `kid` says otherwise). */
  foreignKey?: boolean;
  /** Extra or replacement header members. */
  header?: Record<string, unknown>;
}

export interface TestIssuer {
  /** The `iss` value, and the base of the discovery URL. */
  url: string;
  discoveryUrl: string;
  jwksUri: string;
  kids: Record<TestAlg, string>;
  /** How many times discovery and JWKS were fetched, so tests can see a verifier stopped early. */
  hits: { discovery: number; jwks: number };
  /** Replace members of the discovery document (e.g. a different `issuer`), or restore it with `{}`. */
  setDiscoveryOverrides(overrides: Record<string, unknown>): void;
  /** Sign arbitrary claims. */
  sign(claims: Record<string, unknown>, opts?: SignOptions): string;
  /**
   * Sign a plausible identity token: iss/sub/iat/nbf/exp/jti filled in, `claims` override them
   * (set a member to `undefined` to leave it out).
   */
  token(claims?: Record<string, unknown>, opts?: SignOptions & { lifetimeSeconds?: number }): string;
  close(): Promise<void>;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function thumbprint(jwk: Record<string, unknown>): string {
  // RFC 7638 members in lexicographic order, so kids look like real issuers' kids.
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return b64url(createHash('sha256').update(canonical).digest());
}

interface KeyEntry {
  alg: TestAlg;
  kid: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

function makeKey(alg: TestAlg): KeyEntry {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const kid = thumbprint(jwk);
  return { alg, kid, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

function signWith(alg: TestAlg, key: KeyObject, input: string): Buffer {
  return alg === 'RS256'
    ? cryptoSign('sha256', Buffer.from(input), key)
    : cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
}

export async function startTestIssuer(opts: { path?: string } = {}): Promise<TestIssuer> {
  const keys: Record<TestAlg, KeyEntry> = { RS256: makeKey('RS256'), ES256: makeKey('ES256') };
  const foreign: Record<TestAlg, KeyEntry> = { RS256: makeKey('RS256'), ES256: makeKey('ES256') };
  const hits = { discovery: 0, jwks: 0 };
  let overrides: Record<string, unknown> = {};
  const path = (opts.path ?? '').replace(/\/+$/, '');

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === `${path}/.well-known/openid-configuration`) {
      hits.discovery++;
      return send(200, { ...discovery(), ...overrides });
    }
    if (req.method === 'GET' && url.pathname === `${path}/.well-known/jwks.json`) {
      hits.jwks++;
      return send(200, { keys: Object.values(keys).map((k) => k.publicJwk) });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuerUrl = `http://127.0.0.1:${port}${path}`;
  const discovery = () => ({
    issuer: issuerUrl,
    jwks_uri: `${issuerUrl}/.well-known/jwks.json`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  });

  const sign: TestIssuer['sign'] = (claims, o = {}) => {
    const alg = o.alg ?? 'RS256';
    const published = alg === 'RS256' || alg === 'ES256' ? keys[alg] : keys.RS256;
    const header: Record<string, unknown> = { alg, typ: 'JWT' };
    const kid = o.kid === undefined ? published.kid : o.kid;
    if (kid !== null) header.kid = kid;
    Object.assign(header, o.header);
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    if (alg === 'none') return `${input}.`;
    if (alg === 'HS256') {
      // The algorithm-confusion forgery: an HMAC keyed with the issuer's public key.
      const secret = keys.RS256.privateKey.export({ type: 'pkcs1', format: 'pem' });
      return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`;
    }
    const key = (o.foreignKey ? foreign : keys)[alg].privateKey;
    return `${input}.${b64url(signWith(alg, key, input))}`;
  };

  const token: TestIssuer['token'] = (claims = {}, o = {}) => {
    const now = Math.floor(Date.now() / 1000);
    const base: Record<string, unknown> = {
      iss: issuerUrl,
      sub: 'test-subject',
      iat: now,
      nbf: now,
      exp: now + (o.lifetimeSeconds ?? 3600),
      jti: randomUUID(),
    };
    const merged: Record<string, unknown> = { ...base, ...claims };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    return sign(merged, o);
  };

  return {
    url: issuerUrl,
    discoveryUrl: `${issuerUrl}/.well-known/openid-configuration`,
    jwksUri: `${issuerUrl}/.well-known/jwks.json`,
    kids: { RS256: keys.RS256.kid, ES256: keys.ES256.kid },
    hits,
    setDiscoveryOverrides(o) {
      overrides = { ...o };
    },
    sign,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
