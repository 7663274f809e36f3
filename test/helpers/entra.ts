// A local stand-in for the Microsoft Entra ID token endpoint, for workload identity federation:
// an application (client ID) with federated identity credentials exchanges a JWT from an outside
// issuer, sent as an RFC 7523 client assertion, for an access token. It speaks TLS with a test
// CA (MSAL refuses a plain-http authority) and serves what MSAL asks for:
//
//   GET  /{tenant}/v2.0/.well-known/openid-configuration   tenant discovery (MSAL checks that
//        `issuer` has the scheme and host of the authority)
//   GET  /common/discovery/instance?api-version=1.1&authorization_endpoint=…   instance
//        discovery; MSAL always asks login.microsoftonline.com for it unless the application
//        disables instance discovery, so it is reached here only through a proxy that tunnels
//        that host (see proxy-trap.ts). Like Entra it answers `invalid_instance` (AADSTS50049)
//        for an authority host that is not one of Microsoft's clouds.
//   POST /{tenant}/oauth2/v2.0/token   client credentials with a client assertion
//   GET  /{tenant}/discovery/v2.0/keys   the keys that sign the access tokens handed out
//
// The assertion is judged as Entra judges federated credentials: RS256 only; the issuer and the
// subject matched exactly (case-sensitive) against the application's federated credentials; the
// audience one of the credential's audiences (`api://AzureADTokenExchange`); the signature
// checked with the keys found through the issuer's discovery document; not expired, not before
// nbf, and a lifetime of at most a day. Refusals carry Entra's JSON and AADSTS codes.
//
// Known, deliberate differences from Entra: issuers are plain http on loopback (Entra demands a
// public https issuer); discovery and JWKS are fetched on every request; the error code chosen for
// a lifetime over the maximum is a guess at Entra's (it does not document one).
import { createHash, generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { TokenRejected, verifyWebIdentityToken } from './standins.js';
import type { JwtClaims, JwtHeader } from './standins.js';
import { startProxyTrap, type ProxyTrap } from './proxy-trap.js';
import { makeTestCertificates, type TestCertificates } from './tls.js';

export const AZURE_AD_TOKEN_EXCHANGE = 'api://AzureADTokenExchange';
export const CLIENT_ASSERTION_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Hosts of Microsoft's own clouds, the only ones instance discovery vouches for. */
const MICROSOFT_AUTHORITY_HOSTS = [
  'login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net',
  'login.microsoftonline.us', 'login.usgovcloudapi.net', 'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn',
];

export interface FederatedCredential {
  name?: string;
  /** Compared with the assertion's `iss` exactly, case and trailing slash included. */
  issuer: string;
  /** Compared with the assertion's `sub` exactly. */
  subject: string;
  /** Default `[api://AzureADTokenExchange]`, the only value Entra offers in its portal. */
  audiences?: string[];
}

export interface EntraOptions {
  tenantId: string;
  /** Federated identity credentials, by application (client) ID. */
  applications: Record<string, FederatedCredential[]>;
  tls: { key: string; cert: string };
  /** Longest accepted assertion lifetime (exp − nbf, or exp − iat), default a day. */
  maxAssertionLifetimeSeconds?: number;
  accessTokenLifetimeSeconds?: number;
  clockSkewSeconds?: number;
  /** Milliseconds since the epoch; lets tests move the stand-in's clock. */
  clock?: () => number;
}

export interface EntraIssuedToken {
  accessToken: string;
  clientId: string;
  tenantId: string;
  /** The resource of the `/.default` scope, e.g. `https://management.azure.com`. */
  resource: string;
  scope: string;
  /** The assertion's issuer and subject: who the token was given to. */
  federatedIssuer: string;
  federatedSubject: string;
  credentialName?: string;
  expiresAtMs: number;
}

export interface EntraRequest {
  endpoint: 'openid-configuration' | 'instance-discovery' | 'token' | 'keys' | 'unknown';
  method: string;
  path: string;
  /** The Host header: shows whether the request came straight or through a tunnelled public name. */
  host?: string;
  tenant?: string;
  status: number;
  ok: boolean;
  /** Query (GET) or form (POST) parameters, the assertion byte-exact. */
  params: Record<string, string>;
  /** The query string of any request (MSAL puts its library and telemetry parameters there). */
  query: Record<string, string>;
  userAgent?: string;
  /** MSAL's telemetry headers (`x-client-sku`, `x-client-ver`, …). */
  clientHeaders: Record<string, string>;
  error?: string;
  /** The AADSTS number, e.g. 700211. */
  errorCode?: number;
  errorDescription?: string;
  header?: JwtHeader;
  claims?: JwtClaims;
  checks: string[];
  issued?: EntraIssuedToken;
}

export interface EntraStandIn {
  /** `https://127.0.0.1:PORT`: what AZURE_AUTHORITY_HOST is set to. */
  url: string;
  port: number;
  /** `url/tenant`. */
  authority: string;
  requests: EntraRequest[];
  issued: Map<string, EntraIssuedToken>;
  close(): Promise<void>;
}

class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const WIF_DOCS = 'https://learn.microsoft.com/entra/workload-id/workload-identity-federation';

function signingKey(): { privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const kid = b64url(createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest()).slice(0, 27);
  return { privateKey, jwk: { ...jwk, kid, use: 'sig', alg: 'RS256' } };
}

export async function startEntraStandIn(opts: EntraOptions): Promise<EntraStandIn> {
  const clock = opts.clock ?? Date.now;
  const maxLifetime = opts.maxAssertionLifetimeSeconds ?? 86_400;
  const tokenLifetime = opts.accessTokenLifetimeSeconds ?? 3599;
  const skew = opts.clockSkewSeconds ?? 300;
  const key = signingKey();
  const requests: EntraRequest[] = [];
  const issued = new Map<string, EntraIssuedToken>();

  const base = (req: http.IncomingMessage) => `https://${req.headers.host ?? '127.0.0.1'}`;
  const knownTenant = (tenant: string) => {
    if (tenant !== opts.tenantId) {
      throw new EntraError(400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
  };

  const openidConfiguration = (req: http.IncomingMessage, tenant: string) => {
    knownTenant(tenant);
    const t = `${base(req)}/${tenant}`;
    return {
      token_endpoint: `${t}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${t}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${t}/v2.0`,
      request_uri_parameter_supported: false,
      authorization_endpoint: `${t}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${t}/oauth2/v2.0/devicecode`,
      end_session_endpoint: `${t}/oauth2/v2.0/logout`,
      tenant_region_scope: null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
    };
  };

  const instanceDiscovery = (p: Record<string, string>) => {
    let endpoint: URL;
    try {
      endpoint = new URL(p.authorization_endpoint ?? '');
    } catch {
      throw new EntraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'authorization_endpoint'.");
    }
    if (endpoint.protocol !== 'https:' || !MICROSOFT_AUTHORITY_HOSTS.includes(endpoint.hostname.toLowerCase())) {
      throw new EntraError(400, 'invalid_instance', 50049, 'Unknown or invalid instance.');
    }
    const tenantBase = endpoint.href.replace(/\/oauth2\/v2\.0\/authorize$/, '');
    return {
      tenant_discovery_endpoint: `${tenantBase}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        { preferred_network: 'login.microsoftonline.com', preferred_cache: 'login.windows.net', aliases: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'] },
      ],
    };
  };

  const token = async (tenant: string, p: Record<string, string>, record: EntraRequest) => {
    knownTenant(tenant);
    if (p.grant_type !== 'client_credentials') {
      throw new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${p.grant_type ?? ''}'.`);
    }
    const clientId = p.client_id ?? '';
    const credentials = opts.applications[clientId];
    if (!credentials) {
      throw new EntraError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    }
    const scope = p.scope ?? '';
    const resource = scope.split(' ').find((s) => s.endsWith('/.default'))?.replace(/\/\.default$/, '');
    if (!resource || scope.trim().split(/\s+/).length !== 1) {
      throw new EntraError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    if (p.client_assertion === undefined) {
      throw new EntraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    if (p.client_assertion_type !== CLIENT_ASSERTION_TYPE_JWT_BEARER) {
      throw new EntraError(401, 'invalid_client', 50027, `Invalid client_assertion_type '${p.client_assertion_type ?? ''}'.`);
    }
    record.checks.push('request');

    const assertion = p.client_assertion;
    const headerAlg = (() => {
      try {
        return (JSON.parse(Buffer.from(assertion.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg?: unknown }).alg;
      } catch {
        return undefined;
      }
    })();
    if (headerAlg !== undefined && headerAlg !== 'RS256') {
      throw new EntraError(401, 'invalid_client', 5002738, `Invalid JWT token. '${String(headerAlg)}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256'`);
    }

    try {
      const verified = await verifyWebIdentityToken(assertion, {
        trustedIssuers: [...new Set(credentials.map((c) => c.issuer))],
        checkAudience: () => undefined,
        clockSkewSeconds: skew,
        nowMs: clock(),
        checks: record.checks,
      });
      record.header = verified.header;
      record.claims = verified.claims;
    } catch (err) {
      if (!(err instanceof TokenRejected)) throw err;
      record.header = err.header;
      record.claims = err.claims;
      const c = err.claims ?? {};
      switch (err.reason) {
        case 'untrusted-issuer':
          throw new EntraError(400, 'invalid_request', 700211, `No matching federated identity record found for presented assertion issuer '${String(c.iss)}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${WIF_DOCS}`);
        case 'idp-unreachable':
        case 'discovery-mismatch':
          throw new EntraError(400, 'invalid_request', 50166, `Request to External OIDC endpoint failed. ${err.message}`);
        case 'unknown-kid':
        case 'bad-signature':
          throw new EntraError(401, 'invalid_client', 700027, `Client assertion failed signature validation. ${err.message}`);
        case 'expired':
        case 'not-yet-valid':
          throw timeRange(c);
        default:
          throw new EntraError(400, 'invalid_request', 50027, `JWT token is invalid or malformed. ${err.message}`);
      }
    }
    const claims = record.claims!;
    const iss = claims.iss as string;
    const sub = claims.sub as string;
    const auds = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud as string[]);
    const matching = credentials.filter((c) => c.issuer === iss);
    if (!matching.some((c) => (c.audiences ?? [AZURE_AD_TOKEN_EXCHANGE]).some((a) => auds.includes(a)))) {
      throw new EntraError(400, 'invalid_request', 700212, `No matching federated identity record found for presented assertion audience '${auds.join(', ')}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${WIF_DOCS}`);
    }
    record.checks.push('audience');
    const credential = matching.find((c) => c.subject === sub && (c.audiences ?? [AZURE_AD_TOKEN_EXCHANGE]).some((a) => auds.includes(a)));
    if (!credential) {
      throw new EntraError(400, 'invalid_request', 70021, `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Assertion Audience: '${auds.join(', ')}'. ${WIF_DOCS}`);
    }
    record.checks.push('federated credential');
    const start = typeof claims.nbf === 'number' ? claims.nbf : (claims.iat as number);
    if ((claims.exp as number) - start > maxLifetime) throw timeRange(claims, `The assertion is valid for ${(claims.exp as number) - start} seconds; at most ${maxLifetime} are accepted.`);
    record.checks.push('lifetime');

    const nowS = Math.floor(clock() / 1000);
    const oid = randomUUID();
    const accessClaims = {
      aud: resource,
      iss: `https://sts.windows.net/${opts.tenantId}/`,
      iat: nowS,
      nbf: nowS,
      exp: nowS + tokenLifetime,
      appid: clientId,
      appidacr: '2',
      idp: `https://sts.windows.net/${opts.tenantId}/`,
      idtyp: 'app',
      oid,
      sub: oid,
      tid: opts.tenantId,
      ver: '1.0',
    };
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: key.jwk.kid }));
    const input = `${head}.${b64url(JSON.stringify(accessClaims))}`;
    const accessToken = `${input}.${b64url(cryptoSign('sha256', Buffer.from(input), key.privateKey))}`;
    const entry: EntraIssuedToken = {
      accessToken,
      clientId,
      tenantId: opts.tenantId,
      resource,
      scope,
      federatedIssuer: iss,
      federatedSubject: sub,
      credentialName: credential.name,
      expiresAtMs: (nowS + tokenLifetime) * 1000,
    };
    issued.set(accessToken, entry);
    record.issued = entry;
    return { token_type: 'Bearer', expires_in: tokenLifetime, ext_expires_in: tokenLifetime, access_token: accessToken };
  };

  const timeRange = (c: JwtClaims, extra = '') => {
    const at = (v: unknown) => (typeof v === 'number' ? iso(v * 1000) : 'unknown');
    return new EntraError(401, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${iso(clock())}, assertion valid from ${at(c.nbf ?? c.iat)}, expiry time of assertion ${at(c.exp)}.${extra ? ` ${extra}` : ''} Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`);
  };

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), 'cache-control': 'no-store, no-cache' });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const clientHeaders = Object.fromEntries(
      Object.entries(req.headers).filter(([k]) => k.startsWith('x-client-') || k.startsWith('x-app-') || k === 'x-ms-client-request-id' || k === 'client-request-id').map(([k, v]) => [k, String(v)]),
    );
    const record: EntraRequest = {
      endpoint: 'unknown',
      method: req.method ?? '',
      path: url.pathname,
      host: req.headers.host,
      status: 0,
      ok: false,
      params: Object.fromEntries(url.searchParams),
      query: Object.fromEntries(url.searchParams),
      userAgent: req.headers['user-agent'],
      clientHeaders,
      checks: [],
    };
    requests.push(record);
    const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    const keysPath = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(url.pathname);
    try {
      let answer: unknown;
      if (req.method === 'GET' && discovery) {
        record.endpoint = 'openid-configuration';
        record.tenant = discovery[1];
        answer = openidConfiguration(req, discovery[1]!);
      } else if (req.method === 'GET' && url.pathname === '/common/discovery/instance') {
        record.endpoint = 'instance-discovery';
        answer = instanceDiscovery(record.params);
      } else if (req.method === 'GET' && keysPath) {
        record.endpoint = 'keys';
        knownTenant(keysPath[1]!);
        answer = { keys: [key.jwk] };
      } else if (req.method === 'POST' && tokenPath) {
        record.endpoint = 'token';
        record.tenant = tokenPath[1];
        // No trimming: the assertion is judged exactly as the client sent it.
        record.params = Object.fromEntries(new URLSearchParams(body));
        answer = await token(tokenPath[1]!, record.params, record);
      } else {
        throw new EntraError(404, 'not_found', 90000, `no such endpoint: ${req.method} ${url.pathname}`);
      }
      record.status = 200;
      record.ok = true;
      send(res, 200, answer);
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      const traceId = randomUUID();
      const correlationId = record.clientHeaders['client-request-id'] ?? record.clientHeaders['x-ms-client-request-id'] ?? randomUUID();
      const timestamp = new Date(clock()).toISOString().replace('T', ' ').replace(/Z$/, 'Z');
      const description = `AADSTS${err.code}: ${err.message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`;
      record.status = err.status;
      record.error = err.error;
      record.errorCode = err.code;
      record.errorDescription = description;
      send(res, err.status, {
        error: err.error,
        error_description: description,
        error_codes: [err.code],
        timestamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
      });
    }
  };

  const server = https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`stand-in failure: ${(err as Error).stack ?? String(err)}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    port,
    authority: `${url}/${opts.tenantId}`,
    requests,
    issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Entra ID as Microsoft's clients reach it in these tests: the stand-in, with a certificate that
 * also names login.microsoftonline.com, behind a proxy trap that tunnels that host to it (MSAL
 * always asks it for instance discovery) and cuts every other host.
 */
export async function startEntraBehindTrap(
  opts: Omit<EntraOptions, 'tls'>,
): Promise<{ certs: TestCertificates; entra: EntraStandIn; trap: ProxyTrap; close(): Promise<void> }> {
  const certs = await makeTestCertificates({ dns: ['login.microsoftonline.com'] });
  const entra = await startEntraStandIn({ ...opts, tls: certs });
  const trap = await startProxyTrap({ tunnels: { 'login.microsoftonline.com:443': entra.port } });
  const close = async (): Promise<void> => {
    await Promise.all([entra.close(), trap.close()]);
    await certs.close();
  };
  return { certs, entra, trap, close };
}
