import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MockAgent } from 'undici';
import {
  backoffDelayMs,
  describeHttpFailure,
  describeNetworkError,
  isRetryableStatus,
  parseProblem,
  parseRetryAfter,
  BASE_DELAY_MS,
  MAX_DELAY_MS,
} from '../../src/sandbox/sources/retry.js';
import { displayUrl, ignoredVariables, readRemoteConfig, readTokenTimeoutMs, readTokenUrl, runTokenOf } from '../../src/sandbox/sources/remote-config.js';
import { issueRemote } from '../../src/sandbox/sources/remote.js';
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

describe('which answers are retried', () => {
  it.each([
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [408, false],
    [413, false],
  ])('%i → %s', (status, retry) => {
    expect(isRetryableStatus(status)).toBe(retry);
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

describe('issueRemote against a mocked network', () => {
  const ORIGIN = 'http://tokens.test';
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const runToken = `${part({ alg: 'RS256', typ: 'oz-run+jwt', kid: 'k' })}.${part({ sub: 's', run_id: 'r', exp: 2_000_000_000 })}.c2ln`;
  const env = { OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: `${ORIGIN}/v1/token`, OZ_TOKEN_TIMEOUT: '5s' };
  const now = new Date('2026-06-01T12:00:00Z');
  const request = { audience: 'sts.amazonaws.com', requestedSeconds: 900 };
  const token = `${part({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${part({ sub: 's', aud: 'sts.amazonaws.com', exp: 1_780_316_100 })}.c2ln`;
  let agent: MockAgent;
  beforeEach(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
  });
  afterEach(async () => {
    await agent.close();
  });
  const deps = () => ({ dispatcher: agent, random: () => 0 });
  const pool = () => agent.get(ORIGIN);

  it('sends the run token as a bearer and the request as JSON; returns the token and its claims', async () => {
    pool()
      .intercept({
        path: '/v1/token',
        method: 'POST',
        headers: { authorization: `Bearer ${runToken}`, 'content-type': 'application/json' },
        body: '{"audience":"sts.amazonaws.com","duration_seconds":900}',
      })
      .reply(200, { token, expires_at: '2026-06-01T12:15:00Z' });
    const issued = await issueRemote(env, now, request, deps());
    expect(issued.token).toBe(token);
    expect(issued.expiresAt.toISOString()).toBe('2026-06-01T12:15:00.000Z');
    expect(issued.claims).toMatchObject({ aud: 'sts.amazonaws.com' });
  });

  it('retries a network error and a 502, then succeeds', async () => {
    pool().intercept({ path: '/v1/token', method: 'POST' }).replyWithError(new Error('socket hang up'));
    pool().intercept({ path: '/v1/token', method: 'POST' }).reply(502, 'bad gateway');
    pool().intercept({ path: '/v1/token', method: 'POST' }).reply(200, { token });
    expect((await issueRemote(env, now, request, deps())).token).toBe(token);
  });

  it('does not retry a 400, and reports the problem detail', async () => {
    pool()
      .intercept({ path: '/v1/token', method: 'POST' })
      .reply(400, { type: 'about:blank', title: 'Bad Request', status: 400, detail: '"audience" is empty' }, { headers: { 'content-type': 'application/problem+json' } });
    const e = await issueRemote(env, now, request, deps()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OzError);
    expect((e as OzError).code).toBe('remote_denied');
    expect((e as OzError).message).toBe('the token service at http://tokens.test/v1/token refused the request: HTTP 400 Bad Request: "audience" is empty');
  });

  it.each([
    ['a token for another audience', { token: `${part({ alg: 'RS256' })}.${part({ aud: 'other', exp: 1 })}.c2ln` }, "the token's audience is not the one asked for (\"sts.amazonaws.com\")"],
    ['no token', { expires_at: 'x' }, 'no "token" in the answer'],
    ['not a JWT', { token: 'abc' }, '"token" is not a JWT: expected 3 dot-separated parts, found 1'],
  ])('refuses an answer with %s', async (_n, body, why) => {
    pool().intercept({ path: '/v1/token', method: 'POST' }).reply(200, body);
    const e = (await issueRemote(env, now, request, deps()).catch((x: unknown) => x)) as OzError;
    expect({ code: e.code, message: e.message }).toEqual({ code: 'remote_unavailable', message: `the token service at http://tokens.test/v1/token answered with no usable token: ${why}` });
  });

  it('does not follow a redirect, which would carry the run token elsewhere', async () => {
    pool().intercept({ path: '/v1/token', method: 'POST' }).reply(302, '', { headers: { location: 'http://evil.test/' } });
    const e = (await issueRemote(env, now, request, deps()).catch((x: unknown) => x)) as OzError;
    expect(e.code).toBe('remote_unavailable');
    expect(e.message).toBe('the token service at http://tokens.test/v1/token answered HTTP 302, not a token (is OZ_TOKEN_URL right?)');
  });

  it('refuses an expired grant without asking', async () => {
    const expired = { ...env, OZ_RUN_TOKEN: `${part({ alg: 'RS256' })}.${part({ exp: now.getTime() / 1000 - 1 })}.c2ln` };
    const e = (await issueRemote(expired, now, request, deps()).catch((x: unknown) => x)) as OzError;
    expect({ code: e.code, message: e.message }).toEqual({
      code: 'run_expired',
      message: "the run's grant expired at 2026-06-01T11:59:59.000Z: no token can be issued for this run (OZ_RUN_TOKEN)",
    });
  });
});
