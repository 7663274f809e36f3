import { describe, expect, it } from 'vitest';
import { ozError } from '../helpers/thrown.js';
import { identityClaims, pickRunClaims, validateAudience, BACKDATE_SECONDS, IDENTITY_TOKEN_TYPE, MAX_TOKEN_SECONDS } from '../../src/core/claims.js';
import { computeLifetime, readRunIdentity, readRunLimits, parseDeadline, runClaimsOf } from '../../src/core/context.js';
import { OzError } from '../../src/core/errors.js';

const now = new Date('2026-06-01T12:00:00Z');
const local = { username: () => 'alice', hostname: () => 'box' };


describe('computeLifetime', () => {
  it.each([
    ['no limits beyond the default 4h run', {}, 3600, { seconds: 3600, cappedBy: 'requested' }],
    ['capped by the default maximum run duration', {}, 6 * 3600, { seconds: 4 * 3600, cappedBy: 'max_run_duration' }],
    ['capped by OZ_MAX_RUN_DURATION', { OZ_MAX_RUN_DURATION: '20m' }, 3600, { seconds: 1200, cappedBy: 'max_run_duration' }],
    ['capped by the time left before the deadline', { OZ_RUN_DEADLINE: '2026-06-01T12:10:00Z' }, 3600, { seconds: 600, cappedBy: 'deadline' }],
    ['deadline as Unix seconds', { OZ_RUN_DEADLINE: String(now.getTime() / 1000 + 300) }, 3600, { seconds: 300, cappedBy: 'deadline' }],
    ['the one-day ceiling, counted from the backdated iat', { OZ_MAX_RUN_DURATION: '30d' }, 10 * 86400, { seconds: MAX_TOKEN_SECONDS - BACKDATE_SECONDS, cappedBy: 'max_token_lifetime' }],
  ])('%s', (_name, env, requested, expected) => {
    expect(computeLifetime(requested, readRunLimits(env), now)).toEqual(expected);
  });

  it('refuses a run past its deadline with run_expired', () => {
    const e = ozError(() => computeLifetime(3600, readRunLimits({ OZ_RUN_DEADLINE: '2026-06-01T11:00:00Z' }), now));
    expect(e.code).toBe('run_expired');
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/deadline 2026-06-01T11:00:00.000Z passed 1h ago/);
  });

  it.each([
    ['OZ_RUN_DEADLINE', 'tomorrow', /invalid OZ_RUN_DEADLINE "tomorrow": expected an RFC 3339 time/],
    ['OZ_RUN_DEADLINE', '2026-06-01 12:00', /invalid OZ_RUN_DEADLINE/],
    ['OZ_MAX_RUN_DURATION', 'forever', /invalid OZ_MAX_RUN_DURATION "forever"/],
    ['OZ_MAX_RUN_DURATION', '0', /invalid OZ_MAX_RUN_DURATION "0": it must be longer than zero/],
  ])('%s=%j is a configuration error', (name, value, message) => {
    const e = ozError(() => readRunLimits({ [name]: value }));
    expect(e.code).toBe('config');
    expect(e.message).toMatch(message);
  });
});

describe('parseDeadline', () => {
  it.each([
    ['2026-06-01T12:00:00Z', '2026-06-01T12:00:00.000Z'],
    ['2026-06-01T14:00:00+02:00', '2026-06-01T12:00:00.000Z'],
    ['2026-06-01T12:00:00.5Z', '2026-06-01T12:00:00.500Z'],
    ['1780315200', '2026-06-01T12:00:00.000Z'],
  ])('%s', (text, iso) => {
    const r = parseDeadline(text);
    expect(r.ok && r.value.toISOString()).toBe(iso);
  });

  it.each(['2026-06-01', '2026-06-01T12:00:00', 'soon', '-5', '2026-13-45T99:00:00Z', ' 2026-06-01T12:00:00Z'])('refuses %j', (text) => {
    expect(parseDeadline(text).ok).toBe(false);
  });

  it.each([
    ['2026-02-30T12:00:00Z', 'is not a date and time that exists'],
    ['2026-02-29T12:00:00Z', 'is not a date and time that exists'],
    ['2026-04-31T00:00:00Z', 'is not a date and time that exists'],
    ['2026-06-01T24:00:00Z', 'is not a date and time that exists'],
    ['2026-06-01T12:60:00Z', 'is not a date and time that exists'],
    ['2026-06-01T12:00:00+24:00', 'its UTC offset must be less than 24h'],
    ['2026-06-01T12:00:00-99:00', 'its UTC offset must be less than 24h'],
    ['2026-06-01T12:00:00+05:60', 'its UTC offset must be less than 24h'],
  ])('refuses %j, which Date.parse would read as another time', (text, why) => {
    const r = parseDeadline(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toContain(why);
  });

  it.each([['2028-02-29T12:00:00Z'], ['2026-06-01T12:00:00+23:59'], ['2026-12-31T23:59:59Z']])('accepts the edge %j', (text) => {
    expect(parseDeadline(text).ok).toBe(true);
  });
});

describe('validateAudience', () => {
  it.each([
    [undefined, /missing audience/],
    ['', /missing audience/],
    ['  ', /missing audience/],
    ['sts.amazonaws.com\n', /contains control characters/],
    ['a\u0000b', /contains control characters/],
    ['a\u001bb', /contains control characters/],
    [' sts.amazonaws.com', /leading or trailing whitespace/],
    ['x'.repeat(1025), /1025 characters long/],
  ])('refuses %j', (aud, message) => {
    const e = ozError(() => validateAudience(aud));
    expect(e.code).toBe('usage');
    expect(e.message).toMatch(message);
  });

  it('accepts a URL audience unchanged', () => {
    expect(validateAudience('https://iam.googleapis.com/projects/1/x')).toBe('https://iam.googleapis.com/projects/1/x');
  });
});

describe('identityClaims', () => {
  it('carries the run context, backdates iat/nbf and sets exp from the real issue time', () => {
    const identity = readRunIdentity(
      {
        OZ_RUN_ID: 'run-1',
        OZ_SUBJECT: 'user-1',
        OZ_EMAIL: 'a@example.com',
        OZ_TEAMS: 'team-1, team-2,,',
        OZ_ENVIRONMENT_ID: 'env-1',
        OZ_AGENT_NAME: 'deploy',
        OZ_SKILL_SPEC: 'org/repo:.warp/skills/deploy/SKILL.md',
        OZ_HOST: 'warp',
      },
      local,
    );
    const claims = identityClaims(runClaimsOf(identity), { issuer: 'https://iss', audience: 'sts.amazonaws.com', lifetimeSeconds: 600, now, jti: 'j' });
    const t = now.getTime() / 1000;
    expect(claims).toEqual({
      iss: 'https://iss',
      sub: 'user-1',
      aud: 'sts.amazonaws.com',
      iat: t - BACKDATE_SECONDS,
      nbf: t - BACKDATE_SECONDS,
      exp: t + 600,
      jti: 'j',
      email: 'a@example.com',
      teams: ['team-1', 'team-2'],
      run_id: 'run-1',
      environment: 'env-1',
      agent_name: 'deploy',
      skill_spec: 'org/repo:.warp/skills/deploy/SKILL.md',
      host: 'warp',
    });
  });

  it('uses documented local defaults, with no email claim, on a bare machine', () => {
    const identity = readRunIdentity({ OZ_EMAIL: '' }, local);
    const claims = identityClaims(runClaimsOf(identity), { issuer: 'i', audience: 'a', lifetimeSeconds: 1, now, jti: 'j' });
    expect(claims).not.toHaveProperty('email');
    expect(claims).toMatchObject({ sub: 'local:alice', teams: ['local'], run_id: 'local-box', environment: 'local', host: 'box' });
    expect(identity.sub.source).toBe('default');
  });
});

describe('boundaries', () => {
  it('a claim of exactly 1024 characters is accepted, 1025 is not', () => {
    expect(validateAudience('a'.repeat(1024))).toBe('a'.repeat(1024));
    expect(ozError(() => validateAudience('a'.repeat(1025))).message).toMatch(/it is 1025 characters long, more than 1024$/);
  });

  it('control characters at either end of the C0 and C1 ranges are refused; printable neighbours are not', () => {
    for (const c of ['\u0000', '\u001f', '\u007f', '\u009f']) {
      expect(ozError(() => validateAudience(`a${c}b`)).message).toMatch(/it contains control characters$/);
    }
    for (const c of [' ', '~', '\u00a0', '\u00ff']) expect(validateAudience(`a${c}b`)).toBe(`a${c}b`);
  });

  it('passes the given error code on', () => {
    expect(ozError(() => validateAudience('', 'config')).code).toBe('config');
    expect(ozError(() => validateAudience(' a', 'config')).code).toBe('config');
  });

  it('exactly 1 s left before the deadline gives a 1 s token; less than that is too late', () => {
    const limits = readRunLimits({ OZ_RUN_DEADLINE: '2026-06-01T12:00:01Z' });
    expect(computeLifetime(3600, limits, now)).toEqual({ seconds: 1, cappedBy: 'deadline' });
    const late = ozError(() => computeLifetime(3600, limits, new Date('2026-06-01T12:00:01.000Z')));
    expect({ code: late.code, message: late.message }).toEqual({
      code: 'run_expired',
      message: "the run's deadline 2026-06-01T12:00:01.000Z passed 0s ago: no token can be issued for it (OZ_RUN_DEADLINE)",
    });
  });

  it('no token lives past a day counted from its backdated iat: 86,370 s', () => {
    expect(computeLifetime(2 * 86400, readRunLimits({ OZ_MAX_RUN_DURATION: '3d' }), now)).toEqual({ seconds: 86_370, cappedBy: 'max_token_lifetime' });
    expect(computeLifetime(86_370, readRunLimits({ OZ_MAX_RUN_DURATION: '3d' }), now)).toEqual({ seconds: 86_370, cappedBy: 'requested' });
  });

  it('a cap equal to the request is not a cap', () => {
    expect(computeLifetime(1200, readRunLimits({ OZ_MAX_RUN_DURATION: '20m' }), now)).toEqual({ seconds: 1200, cappedBy: 'requested' });
    expect(computeLifetime(600, readRunLimits({ OZ_RUN_DEADLINE: '2026-06-01T12:10:00Z' }), now)).toEqual({ seconds: 600, cappedBy: 'requested' });
  });
});

describe('pickRunClaims', () => {
  it('has no member for a claim that is not set, and copies teams', () => {
    const teams = ['a'];
    const picked = pickRunClaims({ sub: 's', run_id: 'r', teams, host: 'h', extra: 'x' } as never);
    expect(picked).toStrictEqual({ sub: 's', run_id: 'r', teams: ['a'], host: 'h' });
    expect(picked.teams).not.toBe(teams);
    expect(pickRunClaims({ sub: 's', run_id: 'r', email: 'e', environment: 'v', agent_name: 'n', skill_spec: 'k' })).toStrictEqual({
      sub: 's',
      run_id: 'r',
      email: 'e',
      environment: 'v',
      agent_name: 'n',
      skill_spec: 'k',
    });
  });

  it('identity tokens say typ JWT, which is how they differ from run tokens', () => {
    expect(IDENTITY_TOKEN_TYPE).toBe('JWT');
  });
});
