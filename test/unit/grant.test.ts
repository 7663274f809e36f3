import { beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grantedLifetime, verifyGrant, type VerificationKey } from '../../src/platform/grant-verify.js';
import { grantClaims, mintGrant, type GrantClaims } from '../../src/platform/grant-mint.js';
import { RUN_TOKEN_AUDIENCE, RUN_TOKEN_TYPE } from '../../src/core/wire.js';
import { publicJwk, rotateSigningKey, loadSigningKey, type SigningKey } from '../../src/core/keys.js';
import { createKeyCache } from '../../src/platform/key-cache.js';
import { type SigningAlg } from '../../src/core/jwt.js';
import { signJwt } from '../../src/core/jws.js';
import { BACKDATE_SECONDS, identityClaims, MAX_TOKEN_SECONDS } from '../../src/core/claims.js';
import { grantDeadline, runClaimsFromFlags } from '../../src/cli/grant-run.js';
import { ozError } from '../helpers/thrown.js';

const now = new Date('2026-06-01T12:00:00Z');
const nowS = now.getTime() / 1000;
const ISSUER = 'https://oidc.example.com';

function signingKey(alg: SigningAlg): SigningKey {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: publicJwk(privateKey, alg).kid, alg, createdAt: now.toISOString(), privateKey };
}

// Made in beforeAll, not while the file loads: a mutant that breaks signing must fail tests,
// not the loading of the file (which mutation testing would count as nothing failed).
let rsa: SigningKey;
let ec: SigningKey;
const published = new Map<string, VerificationKey>();
const keyFor = (kid: string) => published.get(kid);
beforeAll(() => {
  rsa = signingKey('RS256');
  ec = signingKey('ES256');
  for (const k of [rsa, ec]) published.set(k.kid, { key: createPublicKey(k.privateKey), alg: k.alg });
});

const run = { sub: 'user-7', run_id: 'run-42', teams: ['team-a'], host: 'warp' };
const claims = (over: Partial<GrantClaims> = {}): GrantClaims => ({
  ...grantClaims({ issuer: ISSUER, run, deadline: new Date(now.getTime() + 3600_000), now, jti: 'j-1' }),
  ...over,
});

describe('grantClaims', () => {
  it('binds the run claims to the token service audience until the deadline, leaving out what is unknown', () => {
    const c = claims();
    expect(c).toEqual({ iss: ISSUER, sub: 'user-7', aud: RUN_TOKEN_AUDIENCE, iat: nowS, exp: nowS + 3600, jti: 'j-1', run_id: 'run-42', teams: ['team-a'], host: 'warp' });
    expect(Object.keys(c)).toEqual(['iss', 'sub', 'aud', 'iat', 'exp', 'jti', 'run_id', 'teams', 'host']);
  });
});

describe('verifyGrant', () => {
  it.each(['RS256', 'ES256'] as const)('accepts a %s grant it minted', (alg) => {
    const key = alg === 'RS256' ? rsa : ec;
    const token = mintGrant(claims(), key);
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(header).toEqual({ alg: key.alg, kid: key.kid, typ: RUN_TOKEN_TYPE });
    expect(verifyGrant(token, { issuer: ISSUER, now, keyFor })).toEqual({ ok: true, claims: claims() });
  });

  const identityToken = () => signJwt({ alg: 'RS256', kid: rsa.kid, typ: 'JWT' }, claims(), rsa.privateKey);
  const withPayload = (payload: object) => () => {
    const [h, , s] = mintGrant(claims(), rsa).split('.') as [string, string, string];
    return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  };
  const resigned = (payload: object) => () => mintGrant(payload as GrantClaims, rsa);

  it.each([
    ['not a JWT', () => 'abc', 'the bearer token is not a JWT: expected 3 dot-separated parts, found 1'],
    [
      'an identity token',
      identityToken,
      'the bearer token is not a run token: its typ is "JWT", not "oz-run+jwt" (an identity token cannot be used as a run token; use the token `oz issuer grant-run` printed)',
    ],
    ['a key the issuer does not publish', () => mintGrant(claims(), signingKey('RS256')), /^the run token is signed with a key this issuer does not publish \(kid "[\w-]+"\)$/],
    ['a changed claim', withPayload({ ...claims(), sub: 'admin' }), "the run token's signature does not verify"],
    ['another audience', resigned({ ...claims(), aud: 'sts.amazonaws.com' }), 'the run token\'s audience is not "oz:token-service"'],
    ['another issuer', resigned({ ...claims(), iss: 'https://evil.example.com' }), 'the run token was granted by issuer "https://evil.example.com", not by this one (https://oidc.example.com)'],
    ['no run_id', resigned({ ...claims(), run_id: undefined }), 'the run token is malformed: "run_id" must be a non-empty string'],
    ['teams that are not strings', resigned({ ...claims(), teams: [1] }), 'the run token is malformed: "teams" must be an array of strings'],
    ['an iat in the future', resigned({ ...claims(), iat: nowS + 3600 }), 'the run token was issued in the future'],
  ])('refuses %s', (_n, token, reason) => {
    const v = verifyGrant(token(), { issuer: ISSUER, now, keyFor });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    if (typeof reason === 'string') expect(v.problem).toBe(reason);
    else expect(v.problem).toMatch(reason);
    expect(v.expired).toBeUndefined();
  });

  it('refuses a header whose alg is not its key\'s', () => {
    const forged = signJwt({ alg: 'ES256', kid: rsa.kid, typ: RUN_TOKEN_TYPE }, claims(), ec.privateKey);
    expect(verifyGrant(forged, { issuer: ISSUER, now, keyFor })).toEqual({ ok: false, problem: 'the run token\'s alg "ES256" does not match its key (RS256)' });
  });

  it('says when a grant has expired, at its exact second', () => {
    const token = mintGrant(claims(), rsa);
    const at = new Date((nowS + 3600) * 1000);
    expect(verifyGrant(token, { issuer: ISSUER, now: new Date(at.getTime() - 1000), keyFor }).ok).toBe(true);
    expect(verifyGrant(token, { issuer: ISSUER, now: at, keyFor })).toEqual({
      ok: false,
      problem: "the run's grant expired at 2026-06-01T13:00:00.000Z: no token can be issued for this run",
      expired: at,
    });
  });

  it('still accepts a grant signed before `oz issuer rotate`, through the key cache', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'oz-grant-')), 'data');
    const before = loadSigningKey(dir);
    const token = mintGrant(claims(), before);
    const cache = createKeyCache({ dataDir: dir, now: () => now, checkIntervalMs: 0 });
    expect(verifyGrant(token, { issuer: ISSUER, now, keyFor: cache.verificationKey }).ok).toBe(true);
    rotateSigningKey(dir, now);
    expect(cache.signingKey().kid).not.toBe(before.kid);
    expect(verifyGrant(token, { issuer: ISSUER, now, keyFor: cache.verificationKey }).ok).toBe(true);
  });
});

describe('verifyGrant: the shape of the claims and the clock', () => {
  /** A grant whose payload is this JSON text, signed by the issuer's RSA key. */
  const signedText = (payloadText: string, header: object = { alg: 'RS256', kid: rsa.kid, typ: RUN_TOKEN_TYPE }) => {
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`;
  };
  const verdict = (token: string) => verifyGrant(token, { issuer: ISSUER, now, keyFor });
  const refusal = (token: string) => {
    const v = verdict(token);
    return v.ok ? 'accepted' : v.problem;
  };

  it('refuses a run token without a kid', () => {
    expect(refusal(signedText(JSON.stringify(claims()), { alg: 'RS256', typ: RUN_TOKEN_TYPE }))).toBe('the run token has no "kid"');
  });

  it.each([
    ['iss', ''],
    ['sub', ''],
    ['run_id', 7],
    ['jti', null],
    ['aud', ['oz:token-service']],
  ])('"%s": %j is not a non-empty string', (name, value) => {
    expect(refusal(signedText(JSON.stringify({ ...claims(), [name]: value })))).toBe(`the run token is malformed: "${name}" must be a non-empty string`);
  });

  it.each([
    ['iat', '"1780315200"'],
    ['exp', 'null'],
    ['exp', '1e999'],
    ['iat', '-1e999'],
  ])('"%s": %s is not a number', (name, json) => {
    const text = JSON.stringify({ ...claims(), [name]: 0 }).replace(`"${name}":0`, `"${name}":${json}`);
    expect(refusal(signedText(text))).toBe(`the run token is malformed: "${name}" must be a number`);
  });

  it.each(['email', 'environment', 'agent_name', 'skill_spec', 'host'])('"%s" must be a string when present', (name) => {
    expect(refusal(signedText(JSON.stringify({ ...claims(), [name]: 1 })))).toBe(`the run token is malformed: "${name}" must be a string`);
    expect(refusal(signedText(JSON.stringify({ ...claims(), [name]: 'x' })))).toBe('accepted');
  });

  it.each([['team-a'], [{ 0: 'a' }], [['a', null]]])('"teams" %j is not an array of strings', (teams) => {
    expect(refusal(signedText(JSON.stringify({ ...claims(), teams })))).toBe('the run token is malformed: "teams" must be an array of strings');
  });

  it('takes a grant without teams or any optional claim', () => {
    const { teams: _t, host: _h, ...bare } = claims();
    expect(verdict(signedText(JSON.stringify(bare)))).toEqual({ ok: true, claims: bare });
  });

  it('tolerates a minting clock up to 60 s ahead, not more', () => {
    expect(refusal(signedText(JSON.stringify(claims({ iat: nowS + 60 }))))).toBe('accepted');
    expect(refusal(signedText(JSON.stringify(claims({ iat: nowS + 61 }))))).toBe('the run token was issued in the future');
  });
});

describe('grantedLifetime and the identity claims of a grant', () => {
  it.each([
    ['what was asked', 600, nowS + 3600, 600],
    ["capped at the grant's expiry", 7200, nowS + 3600, 3600],
    ['capped at a day counted from the backdated iat', 10 * 86400, nowS + 30 * 86400, MAX_TOKEN_SECONDS - BACKDATE_SECONDS],
    ['nothing once the grant has expired', 600, nowS - 5, 0],
  ])('%s', (_n, requested, exp, expected) => {
    expect(grantedLifetime(requested, { exp }, now)).toBe(expected);
  });

  it("copies the run's claims from the grant alone, with fresh standard claims", () => {
    const c = identityClaims(claims({ email: 'dev@example.com' }), { issuer: ISSUER, audience: 'sts.amazonaws.com', lifetimeSeconds: 900, now, jti: 'j-2' });
    expect(c).toEqual({
      iss: ISSUER,
      sub: 'user-7',
      aud: 'sts.amazonaws.com',
      iat: nowS - BACKDATE_SECONDS,
      nbf: nowS - BACKDATE_SECONDS,
      exp: nowS + 900,
      jti: 'j-2',
      run_id: 'run-42',
      email: 'dev@example.com',
      teams: ['team-a'],
      host: 'warp',
    });
  });
});

describe('grant-run flags', () => {
  it('keeps the claims given, parses teams, and leaves the rest out', () => {
    expect(runClaimsFromFlags({ runId: 'r', subject: 's', teams: 'a, b,', agentName: 'x' })).toEqual({ sub: 's', run_id: 'r', teams: ['a', 'b'], agent_name: 'x' });
  });

  it.each([
    [{ subject: 's' }, 'missing --run-id'],
    [{ runId: 'r', subject: ' ' }, 'invalid --subject " ": it is empty'],
    [{ runId: 'r', subject: 's', email: ' e@x' }, 'invalid --email " e@x": it has leading or trailing whitespace'],
    [{ runId: 'r', subject: 's', host: 'a'.repeat(1025) }, `invalid --host "${'a'.repeat(80)}…": it is 1025 characters long, more than 1024`],
  ])('%j is a usage error', (opts, message) => {
    const e = ozError(() => runClaimsFromFlags(opts));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'usage', message });
  });

  it.each([
    ['the default 4h', {}, nowS + 4 * 3600],
    ['--max-duration', { maxDuration: '90m' }, nowS + 5400],
    ['--deadline as RFC 3339', { deadline: '2026-06-01T13:00:00Z' }, nowS + 3600],
    ['--deadline as Unix seconds', { deadline: String(nowS + 60) }, nowS + 60],
  ])('deadline from %s', (_n, opts, expected) => {
    expect(grantDeadline(opts, now).getTime() / 1000).toBe(expected);
  });
});
