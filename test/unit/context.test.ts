import { describe, expect, it } from 'vitest';
import { parseDeadline, readRunLimits, secondsLeft, DEFAULT_MAX_RUN_SECONDS } from '../../src/core/context.js';
import { RUN_CLAIMS, parseClaimValue } from '../../src/core/claims.js';
import { normaliseIssuerUrl, readHttpUrl as parseHttpUrl } from '../helpers/parse.js';
import { ozError } from '../helpers/thrown.js';

describe('the teams claim from text', () => {
  const teams = RUN_CLAIMS.find((c) => c.claim === 'teams')!;
  it.each([
    ['a, b ,,c', ['a', 'b', 'c']],
    ['solo', ['solo']],
    ['a b,c', ['a b', 'c']],
  ])('%j → %j', (text, value) => {
    expect(parseClaimValue(teams, text)).toEqual({ ok: true, value });
  });
  it.each([
    ['', 'it is empty'],
    [',,', 'nothing in it (comma-separated team UIDs)'],
    [' a, b ', 'it has leading or trailing whitespace'],
  ])('refuses %j: %s', (text, problem) => {
    expect(parseClaimValue(teams, text)).toEqual({ ok: false, problem });
  });
});

describe('parseDeadline', () => {
  it.each([
    ['1780315200.5', '2026-06-01T12:00:00.500Z'],
    ['1780315200.25', '2026-06-01T12:00:00.250Z'],
    ['0', '1970-01-01T00:00:00.000Z'],
    ['999999999999', '+033658-09-27T01:46:39.000Z'],
    ['2026-06-01t12:00:00z', '2026-06-01T12:00:00.000Z'],
    ['2026-06-01 12:00:00Z', '2026-06-01T12:00:00.000Z'],
    ['2026-06-01T12:00:00.123456Z', '2026-06-01T12:00:00.123Z'],
    ['2026-06-01T06:30:00-05:30', '2026-06-01T12:00:00.000Z'],
  ])('%j is %s', (text, iso) => {
    const r = parseDeadline(text);
    expect(r.ok && r.value.toISOString()).toBe(iso);
  });

  it.each([
    '1234567890123',
    'x1780315200',
    '1780315200x',
    '1780315200.',
    '.5',
    '1e9',
    'x2026-06-01T12:00:00Z',
    // An expanded year, which Date.parse would take.
    '+002026-06-01T12:00:00Z',
    '2026-06-01T12:00:00Zx',
    '2026-06-01T12:00:00+0200',
    '2026-06-01T12:00:00+02',
    '2026-06-01T12:00Z',
    '2026-06-01T12:00:00.Z',
    '26-06-01T12:00:00Z',
    '2026-06-01_12:00:00Z',
    '',
    // Surrounding whitespace is refused here as everywhere in oz.
    ' 1780315200\n',
    ' 2026-06-01T12:00:00Z ',
  ])('refuses %j', (text) => {
    expect(parseDeadline(text).ok).toBe(false);
  });
});

describe('readRunLimits', () => {
  it('defaults to no deadline and four hours, and says so', () => {
    expect(readRunLimits({ OZ_RUN_DEADLINE: '', OZ_MAX_RUN_DURATION: '' })).toEqual({
      deadline: { value: undefined, source: 'default', from: 'OZ_RUN_DEADLINE' },
      maxRunSeconds: { value: DEFAULT_MAX_RUN_SECONDS, source: 'default', from: 'OZ_MAX_RUN_DURATION' },
    });
    expect(DEFAULT_MAX_RUN_SECONDS).toBe(4 * 3600);
  });

  it('reads both variables', () => {
    expect(readRunLimits({ OZ_RUN_DEADLINE: '1780315200', OZ_MAX_RUN_DURATION: '90m' })).toEqual({
      deadline: { value: new Date('2026-06-01T12:00:00Z'), source: 'env', from: 'OZ_RUN_DEADLINE' },
      maxRunSeconds: { value: 5400, source: 'env', from: 'OZ_MAX_RUN_DURATION' },
    });
  });

  it.each([
    [
      { OZ_RUN_DEADLINE: 'soon' },
      'invalid OZ_RUN_DEADLINE "soon": expected an RFC 3339 time such as 2026-01-02T15:04:05Z or Unix seconds',
    ],
    [{ OZ_MAX_RUN_DURATION: '1e3' }, 'invalid OZ_MAX_RUN_DURATION "1e3": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    [{ OZ_MAX_RUN_DURATION: '400d' }, 'invalid OZ_MAX_RUN_DURATION "400d": it is longer than 366 days'],
  ])('%j is a configuration error', (env, message) => {
    const e = ozError(() => readRunLimits(env));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'config', message });
  });
});

describe('secondsLeft', () => {
  const limits = (deadline?: string) => readRunLimits(deadline === undefined ? {} : { OZ_RUN_DEADLINE: deadline });
  const now = new Date('2026-06-01T12:00:00.250Z');
  it.each([
    [undefined, undefined],
    ['2026-06-01T12:10:00Z', 599],
    ['2026-06-01T12:00:01.250Z', 1],
    ['2026-06-01T12:00:01.249Z', 0],
    ['2026-06-01T11:59:59Z', -2],
  ])('deadline %s → %s', (deadline, left) => {
    expect(secondsLeft(limits(deadline), now)).toBe(left);
  });
});

describe('parseHttpUrl and normaliseIssuerUrl', () => {
  const example = { example: 'https://oidc.example.com/v1/token' };

  it.each([
    ['https://issuer.example.com', 'https://issuer.example.com'],
    ['https://issuer.example.com/', 'https://issuer.example.com'],
    ['http://127.0.0.1:8787//', 'http://127.0.0.1:8787'],
    ['HTTPS://Issuer.Example.COM:443/tenants/a/', 'https://issuer.example.com/tenants/a'],
    ['https:issuer.example.com', 'https://issuer.example.com'],
  ])('issuer %j → %j', (raw, issuer) => {
    expect(normaliseIssuerUrl(raw, 'config', 'OZ_ISSUER_URL')).toBe(issuer);
  });

  it.each([
    ['ftp://issuer.example.com', 'config'],
    ['file:///etc/passwd', 'config'],
    ['https://issuer.example.com/?tenant=a', 'config'],
    ['https://issuer.example.com/?', 'usage'],
    ['https://issuer.example.com/#', 'usage'],
    ['https://issuer.example.com/#top', 'usage'],
    ['https://user@issuer.example.com', 'usage'],
    ['https://:secret@issuer.example.com', 'usage'],
  ] as const)('refuses %j with a %s error', (raw, code) => {
    const e = ozError(() => normaliseIssuerUrl(raw, code, '--issuer'));
    expect({ code: e.code, message: e.message }).toEqual({
      code,
      message: `invalid --issuer "${raw}": it must be an http(s) URL with no query, fragment or credentials`,
    });
  });

  it('says what it expected of something that is not a URL', () => {
    const e = ozError(() => normaliseIssuerUrl('issuer.example.com', 'usage', '--issuer'));
    expect({ code: e.code, message: e.message }).toEqual({
      code: 'usage',
      message: 'invalid --issuer "issuer.example.com": expected an http(s) URL such as https://issuer.example.com',
    });
  });

  it('takes a query only when allowed, and keeps it', () => {
    expect(parseHttpUrl('https://t.example.com/v1/token?sig=a', 'config', 'OZ_TOKEN_URL', { ...example, allowQuery: true }).href).toBe(
      'https://t.example.com/v1/token?sig=a',
    );
    const e = ozError(() => parseHttpUrl('https://t.example.com/v1/token?sig=a', 'config', 'OZ_TOKEN_URL', example));
    expect(e.message).toBe('invalid OZ_TOKEN_URL "https://t.example.com/v1/token?sig=a": it must be an http(s) URL with no query, fragment or credentials');
  });

  it('refuses a fragment or credentials even when a query is allowed', () => {
    for (const raw of ['https://t.example.com/x?a#b', 'https://u:p@t.example.com/x']) {
      const e = ozError(() => parseHttpUrl(raw, 'usage', '--token-url', { ...example, allowQuery: true }));
      expect({ code: e.code, message: e.message }).toEqual({
        code: 'usage',
        message: `invalid --token-url "${raw}": it must be an http(s) URL with no fragment or credentials`,
      });
    }
  });

  it('keeps the path of a URL, trailing slash included', () => {
    expect(parseHttpUrl('http://localhost:9/a/b/', 'config', 'X', example).href).toBe('http://localhost:9/a/b/');
  });
});
