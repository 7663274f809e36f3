import { describe, expect, it } from 'vitest';
import { debug, debugWanted, disableDebug, enableDebug, isSecretName, scrub, showValue } from '../../src/core/debug.js';
import { readSetting } from '../../src/core/settings.js';
import { RUN_TOKEN, TOKEN_TIMEOUT } from '../../src/sandbox/settings.js';
import { ISSUER_URL } from '../../src/core/context.js';
import { issuerUrlProblems, runDoctor, type Check } from '../../src/sandbox/doctor.js';
import type { TokenServiceProbe } from '../../src/sandbox/sources/probe.js';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz';

describe('the debug trace', () => {
  it.each([
    [`token ${JWT} here`, 'token <redacted token> here'],
    [`authorization: Bearer ${JWT.slice(0, 12)}`, 'authorization: Bearer <redacted>'],
    ['Basic dXNlcjpwYXNz', 'Basic <redacted>'],
    ['line\nforged', 'line forged'],
    ['GET https://oidc.example.com/.well-known/jwks.json', 'GET https://oidc.example.com/.well-known/jwks.json'],
  ])('scrubs %j', (text, expected) => {
    expect(scrub(text)).toBe(expected);
  });

  it.each([
    ['OZ_RUN_TOKEN', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['PROXY_PASSWORD', true],
    ['OZ_TOKEN_URL', false],
    ['OZ_TOKEN_TIMEOUT', false],
    ['OZ_TOKEN_FILES', false],
    ['OZ_ISSUER_URL', false],
  ])('%s is a secret: %s', (name, secret) => {
    expect(isSecretName(name)).toBe(secret);
  });

  it('shows values quoted, a secret redacted and a query elided', () => {
    expect(showValue('OZ_RUN_TOKEN', JWT)).toBe('<redacted>');
    expect(showValue('OZ_TEAMS', ['a', 'b'])).toBe('["a","b"]');
    expect(showValue('OZ_TOKEN_URL', 'https://t.example.com/v1/token?key=s3cret')).toBe('"https://t.example.com/v1/token?…"');
    expect(showValue('OZ_EMAIL', undefined)).toBe('unset');
  });

  it.each([
    [undefined, false],
    ['', false],
    ['0', false],
    ['false', false],
    ['1', true],
    ['yes', true],
  ])('OZ_DEBUG=%j turns it on: %s', (value, on) => {
    expect(debugWanted(value)).toBe(on);
  });

  it('traces each setting once, with its source, and the run token redacted', () => {
    const lines: string[] = [];
    enableDebug((l) => lines.push(l));
    try {
      const env = { OZ_RUN_TOKEN: JWT, OZ_ISSUER_URL: 'https://oidc.example.com' };
      readSetting(RUN_TOKEN, env);
      readSetting(RUN_TOKEN, env);
      readSetting(ISSUER_URL, env);
      readSetting(TOKEN_TIMEOUT, {});
      debug(`sent ${JWT}`);
    } finally {
      disableDebug();
    }
    readSetting(ISSUER_URL, {});
    expect(lines).toEqual([
      'oz: debug: setting OZ_RUN_TOKEN = <redacted> (from OZ_RUN_TOKEN)',
      'oz: debug: setting OZ_ISSUER_URL = "https://oidc.example.com" (from OZ_ISSUER_URL)',
      'oz: debug: setting OZ_TOKEN_TIMEOUT = 15 (default)',
      'oz: debug: sent <redacted token>',
    ]);
  });
});

describe("doctor's issuer URL rule", () => {
  it.each([
    ['https://oidc.example.com', []],
    ['https://oidc.example.com/tenant-1', []],
    ['http://oidc.example.com', ['is http']],
    ['http://127.0.0.1:8787', ['is http', 'names this machine (loopback)']],
    ['https://localhost', ['names this machine (loopback)']],
    ['https://[::1]:8443', ['names this machine (loopback)']],
    ['https://10.1.2.3', ['names a private address']],
    ['https://172.20.0.1', ['names a private address']],
    ['https://192.168.1.10', ['names a private address']],
    ['https://172.32.0.1', []],
    ['https://issuer', ['names a private address']],
    ['https://issuer.internal', ['names a private address']],
    ['https://[fd00::1]', ['names a private address']],
  ])('%s → %j', (url, problems) => {
    expect(issuerUrlProblems(url)).toEqual(problems);
  });
});

describe("doctor's token service check", () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = new Date('2026-06-01T00:00:00Z');
  const runToken = `${b64({ alg: 'RS256', kid: 'k1', typ: 'oz-run+jwt' })}.${b64({ iss: 'https://oidc.example.com', run_id: 'r1', exp: now.getTime() / 1000 + 3600 })}.c2ln`;
  const docs: Record<string, unknown> = {
    'https://oidc.example.com/.well-known/openid-configuration': { issuer: 'https://oidc.example.com', jwks_uri: 'https://oidc.example.com/jwks' },
    'https://oidc.example.com/jwks': { keys: [{ kid: 'k1' }] },
  };

  async function tokenService(probe: TokenServiceProbe): Promise<Check> {
    const report = await runDoctor({
      env: { OZ_RUN_TOKEN: runToken },
      now,
      prepareDir: '/nonexistent/oz-doctor-test',
      localKey: async () => undefined,
      fetchJson: async (url) => docs[url],
      probeTokenService: async (audience) => {
        expect(audience).toBe('oz:doctor');
        return probe;
      },
    });
    expect(report.checks.find((c) => c.id === 'jwks')?.status).toBe('ok');
    return report.checks.find((c) => c.id === 'token_service')!;
  }

  const url = 'https://oidc.example.com/v1/token';
  const answered = (status: number, type?: string) => ({ url, answered: true as const, status, problem: type ? { type } : {}, failure: `HTTP ${status}` });
  it.each([
    [answered(200), 'ok', /accepted the run token \(a test token/],
    [answered(403), 'ok', /accepted the run token \(and, with its audience allow-list/],
    [answered(401), 'fail', /refused the run token: HTTP 401/],
    [answered(401, 'urn:oz:problem:run-expired'), 'fail', /says the run is over/],
    [answered(429), 'warn', /is rate limiting this run/],
    [answered(503), 'fail', /answered HTTP 503/],
    [{ url, answered: false as const, reason: 'connect ECONNREFUSED 127.0.0.1:9' }, 'fail', /^cannot reach the token service at .*: connect ECONNREFUSED/],
  ])('%j → %s', async (probe, status, finding) => {
    const c = await tokenService(probe);
    expect(c.status).toBe(status);
    expect(c.finding).toMatch(finding);
    expect(c.fix === undefined).toBe(status === 'ok');
  });
});
