import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Agent } from 'undici';
import {
  backoffDelayMs,
  describeHttpFailure,
  describeNetworkError,
  parseProblem,
  parseRetryAfter,
  BASE_DELAY_MS,
  MAX_DELAY_MS,
} from '../../src/sandbox/sources/retry.js';
import { displayUrl, ignoredVariables, readRemoteConfig, readTokenTimeoutMs, readTokenUrl, runTokenOf } from '../../src/sandbox/sources/remote-config.js';
import { issueRemote } from '../../src/sandbox/sources/remote.js';
import { proxyFor } from '../../src/http/proxy.js';
import { directTransport } from '../../src/http/direct.js';
import { undiciTransport } from '../../src/http/undici.js';
import type { Transport } from '../../src/http/transport.js';
import { RateLimiter } from '../../src/platform/rate-limit.js';
import { bearerToken, parseTokenRequest } from '../../src/platform/token-service.js';
import { loggedPath } from '../../src/platform/server.js';
import { OzError } from '../../src/core/errors.js';
import { ozError } from '../helpers/thrown.js';

describe('backoffDelayMs: full jitter', () => {
  it.each([
    [0, BASE_DELAY_MS],
    [1, BASE_DELAY_MS * 2],
    [3, BASE_DELAY_MS * 8],
    [4, MAX_DELAY_MS],
    [30, MAX_DELAY_MS],
  ])('after failure %i: uniform between 0 and %i ms', (attempt, ceiling) => {
    expect(backoffDelayMs(attempt, () => 0)).toBe(0);
    expect(backoffDelayMs(attempt, () => 0.5)).toBe(ceiling / 2);
    expect(backoffDelayMs(attempt, () => 0.999999)).toBe(ceiling - 1);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-06-01T12:00:00Z');
  it.each([
    ['2', 2000],
    ['0', 0],
    [' 120 ', 120_000],
    ['Mon, 01 Jun 2026 12:00:30 GMT', 30_000],
    ['Mon, 01 Jun 2026 11:00:00 GMT', 0],
    [['5', '7'], 5000],
    ['-1', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j ms', (value, expected) => {
    expect(parseRetryAfter(value as string | string[] | undefined, now)).toBe(expected);
  });
});

describe('problem documents become one line', () => {
  it('takes title and detail from problem+json, collapsed and bounded', () => {
    const p = parseProblem(JSON.stringify({ type: 'urn:x', title: 'Bad\nRequest', detail: `x${'y'.repeat(400)}`, extra: 1 }), 'application/problem+json');
    expect(p.type).toBe('urn:x');
    expect(p.title).toBe('Bad Request');
    expect(p.detail).toHaveLength(301);
    expect(describeHttpFailure(400, { title: 'Bad Request', detail: 'no' })).toBe('HTTP 400 Bad Request: no');
  });

  it.each([
    ['an HTML error page', '<html>502</html>', 'text/html'],
    ['broken JSON', '{', 'application/json'],
    ['a JSON string', '"x"', 'application/json'],
  ])('ignores %s and falls back to the status text', (_n, body, type) => {
    const p = parseProblem(body, type);
    expect(p).toEqual({});
    expect(describeHttpFailure(502, p)).toBe('HTTP 502 Bad Gateway');
  });

  it('names a network error by its code', () => {
    expect(describeNetworkError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }))).toBe('connect ECONNREFUSED 127.0.0.1:9');
    expect(describeNetworkError(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))).toBe('Headers Timeout Error (UND_ERR_HEADERS_TIMEOUT)');
    const refused = Object.assign(new Error('connect ECONNREFUSED ::1:9'), { code: 'ECONNREFUSED' });
    expect(describeNetworkError(Object.assign(new AggregateError([refused], ''), { code: 'ECONNREFUSED' }))).toBe('connect ECONNREFUSED ::1:9');
  });
});

describe('remote settings', () => {
  it('OZ_RUN_TOKEN switches to the token service; an empty one does not', () => {
    expect(runTokenOf({ OZ_RUN_TOKEN: ' a.b.c\n' })).toBe('a.b.c');
    expect(runTokenOf({ OZ_RUN_TOKEN: '' })).toBeUndefined();
    expect(runTokenOf({})).toBeUndefined();
  });

  it.each([
    [{}, 'http://127.0.0.1:8787/v1/token'],
    [{ OZ_ISSUER_URL: 'https://oidc.example.com/' }, 'https://oidc.example.com/v1/token'],
    [{ OZ_ISSUER_URL: 'https://oidc.example.com', OZ_TOKEN_URL: 'https://tokens.example.com/x' }, 'https://tokens.example.com/x'],
  ])('token URL from %j', (env, url) => {
    expect(readTokenUrl(env)).toBe(url);
  });

  it.each([
    [{ OZ_TOKEN_URL: 'ftp://x/y' }, 'invalid OZ_TOKEN_URL "ftp://x/y": it must be an http(s) URL with no fragment or credentials'],
    [{ OZ_TOKEN_URL: 'https://user:pw@x/y' }, 'invalid OZ_TOKEN_URL "https://user:pw@x/y": it must be an http(s) URL with no fragment or credentials'],
    [{ OZ_TOKEN_URL: 'nope' }, 'invalid OZ_TOKEN_URL "nope": expected an http(s) URL such as https://oidc.example.com/v1/token'],
  ])('refuses %j', (env, message) => {
    const e = ozError(() => readTokenUrl(env));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'config', message });
  });

  it.each([
    [{}, { iss: 'https://oidc.example.com/' }, 'https://oidc.example.com/v1/token'],
    [{}, { iss: 'https://oidc.example.com/tenant-a' }, 'https://oidc.example.com/tenant-a/v1/token'],
    [{}, {}, 'http://127.0.0.1:8787/v1/token'],
    [{ OZ_ISSUER_URL: 'https://mine.example.com' }, { iss: 'https://oidc.example.com' }, 'https://mine.example.com/v1/token'],
    [{ OZ_TOKEN_URL: 'https://tokens.example.com/x' }, { iss: 'https://oidc.example.com' }, 'https://tokens.example.com/x'],
    [{ OZ_ISSUER_URL: '' }, { iss: 'https://oidc.example.com' }, 'https://oidc.example.com/v1/token'],
  ])('with neither variable, the run token\'s iss names the token service: %j %j', (env, grant, url) => {
    expect(readTokenUrl(env, grant)).toBe(url);
  });

  it.each([
    [{ iss: 'ftp://oidc.example.com' }, 'the run token\'s issuer "ftp://oidc.example.com" cannot name the token service: it must be an http(s) URL with no query, fragment or credentials (set OZ_TOKEN_URL or OZ_ISSUER_URL)'],
    [{ iss: 'https://oidc.example.com/?x=1' }, 'the run token\'s issuer "https://oidc.example.com/?x=1" cannot name the token service: it must be an http(s) URL with no query, fragment or credentials (set OZ_TOKEN_URL or OZ_ISSUER_URL)'],
    [{ iss: 42 }, 'the run token\'s issuer "42" cannot name the token service: it is not a string (set OZ_TOKEN_URL or OZ_ISSUER_URL)'],
  ])('refuses a run token whose iss is no issuer URL: %j', (grant, message) => {
    const e = ozError(() => readTokenUrl({}, grant));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'config', message });
  });

  it.each([
    ['', 15_000],
    ['2s', 2000],
    ['90', 90_000],
  ])('OZ_TOKEN_TIMEOUT %j → %i ms', (value, ms) => {
    expect(readTokenTimeoutMs({ OZ_TOKEN_TIMEOUT: value })).toBe(ms);
  });

  it('refuses a timeout past 120 s or that is not a duration', () => {
    expect(ozError(() => readTokenTimeoutMs({ OZ_TOKEN_TIMEOUT: '3m' })).code).toBe('config');
    expect(ozError(() => readTokenTimeoutMs({ OZ_TOKEN_TIMEOUT: 'fast' })).code).toBe('config');
  });

  it('lists the run-context variables that remote mode ignores', () => {
    expect(ignoredVariables({ OZ_SUBJECT: 'x', OZ_TEAMS: '', OZ_RUN_DEADLINE: '1', OZ_TOKEN_URL: 'y' })).toEqual(['OZ_SUBJECT', 'OZ_RUN_DEADLINE']);
  });

  it('never shows a query string in messages', () => {
    expect(displayUrl('https://t.example.com/v1/token?sig=secret')).toBe('https://t.example.com/v1/token');
  });

  it('a run token that is not a JWT is a configuration error', () => {
    const e = ozError(() => readRemoteConfig({ OZ_RUN_TOKEN: 'x.y' }));
    expect(e.code).toBe('config');
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then the rate, and says how long to wait', () => {
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 3 });
    const t = 1_000_000;
    expect([1, 2, 3].map(() => limiter.take('a', t).ok)).toEqual([true, true, true]);
    expect(limiter.take('a', t)).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(limiter.take('b', t).ok).toBe(true);
    expect(limiter.take('a', t + 500).ok).toBe(true);
    expect(limiter.take('a', t + 500).ok).toBe(false);
  });

  it('forgets keys whose bucket has refilled', () => {
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 10 });
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`, 0);
    expect(limiter.size).toBe(100);
    limiter.take('fresh', 5000);
    expect(limiter.size).toBe(1);
  });
});

describe('token endpoint input', () => {
  it.each([
    ['Bearer a.b.c', 'a.b.c'],
    ['bearer a.b.c', 'a.b.c'],
    ['Bearer  a.b.c ', 'a.b.c'],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    ['Basic dXNlcjpwYXNz', undefined],
    [undefined, undefined],
  ])('Authorization %j → %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it('takes audience and duration, defaulting the duration to an hour and ignoring other members', () => {
    expect(parseTokenRequest(Buffer.from('{"audience":"a","duration_seconds":60,"x":1}'))).toEqual({ ok: true, value: { audience: 'a', durationSeconds: 60 } });
    expect(parseTokenRequest(Buffer.from('{"audience":"a"}'))).toEqual({ ok: true, value: { audience: 'a', durationSeconds: 3600 } });
    expect(parseTokenRequest(Buffer.from('{"audience":" a"}'))).toEqual({ ok: false, problem: 'invalid "audience" " a": it has leading or trailing whitespace' });
    expect(parseTokenRequest(Buffer.from('{"audience":"a","duration_seconds":0}'))).toEqual({ ok: false, problem: '"duration_seconds" must be a whole number of seconds from 1 to 31622400' });
  });

  it('the access log shows a path without anything shaped like a token', () => {
    expect(loggedPath('/v1/token')).toBe('/v1/token');
    expect(loggedPath('/.well-known/jwks.json')).toBe('/.well-known/jwks.json');
    expect(loggedPath('/x/eyJhbGciOi.eyJzdWIi.c2ln/y')).toBe('/x/<redacted>/y');
    expect(loggedPath(`/${'a'.repeat(300)}`)).toHaveLength(201);
  });
});

/**
 * The client over each transport, against services on loopback: everything above the
 * transport (retries, the bound, redirect refusal, checks, messages) must read the same.
 */
const TRANSPORTS: [string, () => Transport][] = [
  ['node:http (no proxy)', () => directTransport()],
  ['undici (what a proxy goes through)', () => undiciTransport(new Agent({ connect: { timeout: 3000 } }))],
];

describe.each(TRANSPORTS)('issueRemote over %s', (_name, makeTransport) => {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const runToken = `${part({ alg: 'RS256', typ: 'oz-run+jwt', kid: 'k' })}.${part({ sub: 's', run_id: 'r', exp: 2_000_000_000 })}.c2ln`;
  const now = new Date();
  const request = { audience: 'sts.amazonaws.com', requestedSeconds: 900 };
  const exp = Math.floor(now.getTime() / 1000) + 900;
  const token = `${part({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${part({ sub: 's', aud: 'sts.amazonaws.com', exp })}.c2ln`;
  const cleanups: (() => void)[] = [];
  let transport: Transport;
  beforeEach(() => {
    transport = makeTransport();
  });
  afterEach(() => {
    transport.close();
    for (const c of cleanups.splice(0)) c();
  });
  const deps = () => ({ transport, random: () => 0 });

  interface Seen {
    port: number | undefined;
    method: string;
    url: string;
    headers: IncomingHttpHeaders;
    body: string;
  }
  type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | 'hang up';

  /** A token service answering from a script, on loopback; the env that points oz at it. */
  async function service(script: (n: number) => Reply) {
    const seen: Seen[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        seen.push({ port: req.socket.remotePort, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const reply = script(seen.length);
        if (reply === 'hang up') {
          req.socket.destroy();
          return;
        }
        res.writeHead(reply.status, { 'content-type': reply.status === 200 ? 'application/json' : 'application/problem+json', ...reply.headers });
        res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {}));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/token`;
    return { url, seen, env: { OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: url, OZ_TOKEN_TIMEOUT: '5s' } };
  }

  const failure = async (env: Record<string, string>) => {
    const e = await issueRemote(env, now, request, deps()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OzError);
    return { code: (e as OzError).code, message: (e as OzError).message };
  };

  it('sends the run token as a bearer and the request as JSON; returns the token and its claims', async () => {
    const svc = await service(() => ({ status: 200, body: { token, expires_at: new Date(exp * 1000).toISOString() } }));
    const issued = await issueRemote(svc.env, now, request, deps());
    expect(issued.token).toBe(token);
    expect(issued.expiresAt.getTime()).toBe(exp * 1000);
    expect(issued.claims).toMatchObject({ aud: 'sts.amazonaws.com' });
    expect(svc.seen).toHaveLength(1);
    expect(svc.seen[0]).toMatchObject({ method: 'POST', url: '/v1/token', body: '{"audience":"sts.amazonaws.com","duration_seconds":900}' });
    expect(svc.seen[0]!.headers).toMatchObject({ authorization: `Bearer ${runToken}`, 'content-type': 'application/json', 'content-length': '55' });
  });

  it('retries a dropped connection and a 502, then succeeds, reusing the kept-alive connection', async () => {
    const svc = await service((n) => (n === 1 ? 'hang up' : n === 2 ? { status: 502, body: 'bad gateway' } : { status: 200, body: { token } }));
    expect((await issueRemote(svc.env, now, request, deps())).token).toBe(token);
    expect(svc.seen).toHaveLength(3);
    expect(svc.seen[2]!.port).toBe(svc.seen[1]!.port);
  });

  it('does not retry a 400, and reports the problem detail', async () => {
    const svc = await service(() => ({ status: 400, body: { type: 'about:blank', title: 'Bad Request', status: 400, detail: '"audience" is empty' } }));
    expect(await failure(svc.env)).toEqual({ code: 'remote_denied', message: `the token service at ${svc.url} refused the request: HTTP 400 Bad Request: "audience" is empty` });
    expect(svc.seen).toHaveLength(1);
  });

  it("escapes C1 and bidi-override characters in the service's words", async () => {
    const svc = await service(() => ({ status: 403, body: { title: 'Forbidden\u009b2J', detail: 'run \u202egnp.exe\u202c denied' } }));
    const { message } = await failure(svc.env);
    expect(message).toBe(`the token service at ${svc.url} refused the request: HTTP 403 Forbidden\\u009b2J: run \\u202egnp.exe\\u202c denied`);
  });

  it.each([
    ['a token for another audience', () => ({ token: `${part({ alg: 'RS256' })}.${part({ aud: 'other', exp })}.c2ln` }), "the token's audience is not the one asked for (\"sts.amazonaws.com\")"],
    ['no token', () => ({ expires_at: 'x' }), 'no "token" in the answer'],
    ['not a JWT', () => ({ token: 'abc' }), '"token" is not a JWT: expected 3 dot-separated parts, found 1'],
    [
      'a token that has already expired',
      () => ({ token: `${part({ alg: 'RS256' })}.${part({ aud: 'sts.amazonaws.com', exp: 1_700_000_000 })}.c2ln` }),
      'the token expired at 2023-11-14T22:13:20.000Z, before it arrived',
    ],
  ])('refuses an answer with %s', async (_n, body, why) => {
    const svc = await service(() => ({ status: 200, body: body() }));
    expect(await failure(svc.env)).toEqual({ code: 'remote_unavailable', message: `the token service at ${svc.url} answered with no usable token: ${why}` });
  });

  it('refuses an answer larger than 64 KiB', async () => {
    const svc = await service(() => ({ status: 200, body: { token, padding: 'x'.repeat(70_000) } }));
    expect(await failure(svc.env)).toEqual({ code: 'remote_unavailable', message: `the token service at ${svc.url} answered HTTP 200 with more than 65536 bytes` });
  });

  it('does not follow a redirect, which would carry the run token elsewhere', async () => {
    const svc = await service(() => ({ status: 302, headers: { location: 'http://127.0.0.1:9/' }, body: '' }));
    expect(await failure(svc.env)).toEqual({ code: 'remote_unavailable', message: `the token service at ${svc.url} answered HTTP 302, not a token (is OZ_TOKEN_URL right?)` });
    expect(svc.seen).toHaveLength(1);
  });

  it('refuses an expired grant without asking', async () => {
    const svc = await service(() => ({ status: 200, body: { token } }));
    const expired = { ...svc.env, OZ_RUN_TOKEN: `${part({ alg: 'RS256' })}.${part({ exp: Math.floor(now.getTime() / 1000) - 1 })}.c2ln` };
    expect((await failure(expired)).code).toBe('run_expired');
    expect(svc.seen).toHaveLength(0);
  });

  it('the overall bound cuts a TLS handshake that never completes', async () => {
    const sockets = new Set<Socket>();
    const server = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/token`;
    const started = Date.now();
    const e = await failure({ OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: url, OZ_TOKEN_TIMEOUT: '1s' });
    expect(Date.now() - started).toBeLessThan(1400);
    expect(e.code).toBe('remote_unavailable');
    expect(e.message).toMatch(/^the token service at https:\/\/127\.0\.0\.1:\d+\/v1\/token did not answer within 1s \(OZ_TOKEN_TIMEOUT; 1 attempt in 1\.\ds\)$/);
    expect(transport.closed).toBe(true);
  });
});

describe('which proxy carries a request', () => {
  const http = new URL('http://tokens.example.com/v1/token');
  const https = new URL('https://tokens.example.com/v1/token');
  it.each([
    ['no proxy variables', http, {}, undefined],
    ['HTTP_PROXY for http', http, { HTTP_PROXY: 'http://p:3128' }, { url: 'http://p:3128', variable: 'HTTP_PROXY' }],
    ['lower case first', http, { http_proxy: 'http://a:1', HTTP_PROXY: 'http://b:2' }, { url: 'http://a:1', variable: 'http_proxy' }],
    ['HTTPS_PROXY for https', https, { HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'http://q:1' }, { url: 'http://p:3128', variable: 'HTTPS_PROXY' }],
    ['HTTP_PROXY for https when HTTPS_PROXY is unset', https, { HTTP_PROXY: 'http://q:1' }, { url: 'http://q:1', variable: 'HTTP_PROXY' }],
    ['HTTPS_PROXY is not for http', http, { HTTPS_PROXY: 'http://p:3128' }, undefined],
    ['no scheme: http://', http, { HTTP_PROXY: '127.0.0.1:3128' }, { url: 'http://127.0.0.1:3128', variable: 'HTTP_PROXY' }],
    ['a path is ignored', http, { HTTP_PROXY: 'http://p:3128/some/path?x' }, { url: 'http://p:3128', variable: 'HTTP_PROXY' }],
    ['credentials are kept', http, { HTTP_PROXY: 'https://u:pw@p' }, { url: 'https://u:pw@p', variable: 'HTTP_PROXY' }],
    ['NO_PROXY names the host', http, { HTTP_PROXY: 'p:1', NO_PROXY: 'localhost,tokens.example.com' }, undefined],
    ['NO_PROXY names a parent domain', http, { HTTP_PROXY: 'p:1', NO_PROXY: '.example.com' }, undefined],
    ['NO_PROXY with another port', http, { HTTP_PROXY: 'p:1', NO_PROXY: 'tokens.example.com:8080' }, { url: 'http://p:1', variable: 'HTTP_PROXY' }],
    ['NO_PROXY with the default port', https, { HTTPS_PROXY: 'p:1', NO_PROXY: 'tokens.example.com:443' }, undefined],
    ['NO_PROXY=*', https, { HTTPS_PROXY: 'p:1', NO_PROXY: '*' }, undefined],
    ['no_proxy before NO_PROXY', http, { HTTP_PROXY: 'p:1', no_proxy: 'other.test', NO_PROXY: '*' }, { url: 'http://p:1', variable: 'HTTP_PROXY' }],
    ['a bad proxy that NO_PROXY bypasses', http, { HTTP_PROXY: 'not a url', NO_PROXY: 'tokens.example.com' }, undefined],
  ])('%s', (_n, url, env, expected) => {
    expect(proxyFor(url, env)).toEqual(expected);
  });

  it.each([
    ['HTTPS_PROXY', 'garbage with spaces', 'invalid HTTPS_PROXY "garbage with spaces": expected a proxy such as http://proxy.example.com:3128'],
    ['HTTPS_PROXY', 'http://', 'invalid HTTPS_PROXY "http://": expected a proxy such as http://proxy.example.com:3128'],
    ['HTTPS_PROXY', 'socks5://p:1080', 'invalid HTTPS_PROXY "socks5://p:1080": oz speaks to http:// and https:// proxies only'],
    ['https_proxy', ':3128', 'invalid https_proxy ":3128": expected a proxy such as http://proxy.example.com:3128'],
  ])('%s=%j is a configuration error naming the variable', (variable, value, message) => {
    const e = ozError(() => proxyFor(https, { [variable]: value }));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'config', message });
  });
});
