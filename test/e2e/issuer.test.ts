import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decode, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';

const PYJWT = join(__dirname, '../helpers/pyjwt_verify.py');

/** The relying party: PyJWT through discovery and JWKS, sharing no code with oz. */
async function verifyWithPyJwt(token: string, audience: string) {
  const r = await run('/usr/bin/python3', [PYJWT, audience], { input: token, env: { PATH: process.env.PATH ?? '' } });
  return { ok: r.code === 0, out: r.stdout, claims: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

let home: string;
let env: Record<string, string>;
let server: Served | undefined;
beforeEach(() => {
  home = tempDir();
  env = scrubbedEnv(home);
});
afterEach(async () => {
  await server?.stop('SIGKILL');
  server = undefined;
});

async function startIssuer(alg?: string) {
  if (alg) await oz(['issuer', 'init', '--alg', alg], { env });
  server = await serve(env);
  env.OZ_ISSUER_URL = server.url;
  return server;
}

async function token(aud: string, extra: Record<string, string> = {}) {
  const r = await oz(['federate', 'issue-token', '--audience', aud], { env: { ...env, ...extra } });
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

describe('a relying party verifies oz tokens through discovery and JWKS', () => {
  it.each(['RS256', 'ES256'])('%s tokens verify before and after rotate; a tampered one does not', async (alg) => {
    await startIssuer(alg);
    const before = await token('sts.amazonaws.com', { OZ_SUBJECT: 'user-1' });
    const v1 = await verifyWithPyJwt(before, 'sts.amazonaws.com');
    expect(v1.out).not.toMatch(/^ERROR/);
    expect(v1.claims).toMatchObject({ sub: 'user-1', aud: 'sts.amazonaws.com', iss: server!.url });
    // A token with a trailing newline is not a valid compact JWS: relying parties refuse it.
    expect((await verifyWithPyJwt(`${before}\n`, 'sts.amazonaws.com')).ok).toBe(false);
    expect((await verifyWithPyJwt(before, 'another-audience')).out).toMatch(/^ERROR InvalidAudienceError/);

    const rot = await oz(['issuer', 'rotate', '--json'], { env });
    expect(rot.code).toBe(0);
    const { previous, current } = JSON.parse(rot.stdout);
    expect(previous.kid).toBe(decode(before).header.kid);

    const after = await token('sts.amazonaws.com');
    expect(decode(after).header.kid).toBe(current.kid);
    // The JWKS cache in the server lasts a second; a relying party may fetch at any moment after.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await verifyWithPyJwt(after, 'sts.amazonaws.com')).ok).toBe(true);
    expect((await verifyWithPyJwt(before, 'sts.amazonaws.com')).ok).toBe(true);

    const [h, p, s] = after.trim().split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.sub = 'someone-else';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    expect((await verifyWithPyJwt(forged, 'sts.amazonaws.com')).out).toMatch(/^ERROR InvalidSignatureError/);
  });

  it('16 concurrent first uses of an empty data directory create one key, and every token verifies', async () => {
    const runs = await Promise.all(Array.from({ length: 16 }, () => oz(['federate', 'issue-token', '--audience', 'aud-x'], { env })));
    for (const r of runs) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const kids = new Set(runs.map((r) => decode(r.stdout).header.kid));
    expect(kids.size).toBe(1);
    const stored = JSON.parse(readFileSync(join(home, 'oz-data', 'signing-key.json'), 'utf8'));
    expect(kids.has(stored.kid)).toBe(true);
    // No temporary files are left behind by the losers of the race.
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(home, 'oz-data'))).toEqual(['signing-key.json']);
    // Their iss is the default issuer URL; serve the same directory there is not possible on a
    // fixed port in tests, so re-issue against a served issuer and verify all tokens by key.
    await startIssuer();
    const jwks = (await (await fetch(`${server!.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual([...kids]);
    const fresh = await Promise.all(Array.from({ length: 4 }, () => token('aud-x')));
    for (const t of fresh) expect((await verifyWithPyJwt(t, 'aud-x')).ok).toBe(true);
  });

  it('oz federate inspect --verify checks the token as a relying party and says what failed', async () => {
    await startIssuer();
    const t = await token('sts.amazonaws.com');
    const ok = await oz(['federate', 'inspect', '--verify', '--audience', 'sts.amazonaws.com', '--json'], { env, input: t });
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.stdout);
    expect(doc.verification).toMatchObject({ verified: true, kid: decode(t).header.kid, jwks_uri: `${server!.url}/.well-known/jwks.json` });
    expect(doc.claims.aud).toBe('sts.amazonaws.com');
    expect(doc.seconds_left).toBeGreaterThan(3500);

    const wrongAud = await oz(['federate', 'inspect', t, '--verify', '--audience', 'other'], { env });
    expect(wrongAud.code).toBe(7);
    expect(wrongAud.stderr).toBe('oz: the audience is not the one expected: expected "other", the token has "sts.amazonaws.com"\n');

    const [h, p] = t.split('.');
    const badSig = await oz(['federate', 'inspect', `${h}.${p}.AAAA`, '--verify'], { env });
    expect(badSig.code).toBe(7);
    expect(badSig.stderr).toBe('oz: the signature does not match the key published for its kid\n');

    const r = await oz(['issuer', 'rotate'], { env });
    expect(r.code).toBe(0);
    // A kid the JWKS has never had.
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
    const unknownKid = `${Buffer.from(JSON.stringify({ ...header, kid: 'nope' })).toString('base64url')}.${p}.AAAA`;
    const noKey = await oz(['federate', 'inspect', unknownKid, '--verify'], { env });
    expect(noKey.code).toBe(7);
    expect(noKey.stderr).toMatch(/^oz: no key with kid "nope" in the JWKS at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json/);

    await server!.stop();
    server = undefined;
    const down = await oz(['federate', 'inspect', t, '--verify'], { env });
    expect(down.code).toBe(7);
    expect(down.stderr).toMatch(
      /^oz: cannot fetch the issuer's discovery document http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration: .*ECONNREFUSED.*; is the issuer http:\/\/127\.0\.0\.1:\d+ up\? \(for oz's own issuer, `oz issuer serve` may not be running\)\n$/,
    );
  });

  it('inspect without --verify decodes for a person, and refuses what is not a JWT', async () => {
    const t = await token('sts.amazonaws.com', { OZ_RUN_ID: 'run-9' });
    const r = await oz(['federate', 'inspect', t], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"run_id": "run-9"');
    expect(r.stdout).toMatch(/Expires: +\d{4}-\d\d-\d\dT[\d:.]+Z \(in (1h|59m\d+s)\)\n/);
    const bad = await oz(['federate', 'inspect', 'not-a-token'], { env });
    expect(bad).toMatchObject({ code: 2, stdout: '', stderr: 'oz: not a JWT: expected 3 dot-separated parts, found 1\n' });
  });
});

describe('oz issuer', () => {
  it('discovery names the issuer, its JWKS and the supported algorithms', async () => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    const r = await oz(['issuer', 'discovery'], { env: { ...env, OZ_ISSUER_URL: 'https://oidc.example.com/' } });
    expect(JSON.parse(r.stdout)).toEqual({
      issuer: 'https://oidc.example.com',
      jwks_uri: 'https://oidc.example.com/.well-known/jwks.json',
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      claims_supported: ['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'run_id', 'email', 'teams', 'environment', 'agent_name', 'skill_spec', 'host', 'oz_sub', 'https://aws.amazon.com/tags'],
    });
  });

  it('jwks never holds a private member', async () => {
    await oz(['issuer', 'init'], { env });
    await oz(['issuer', 'rotate', '--alg', 'ES256'], { env });
    const r = await oz(['issuer', 'jwks'], { env });
    const { keys } = JSON.parse(r.stdout);
    expect(keys).toHaveLength(2);
    for (const k of keys) {
      expect(Object.keys(k).sort()).toEqual(k.kty === 'RSA' ? ['alg', 'e', 'kid', 'kty', 'n', 'use'] : ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    }
  });

  it('publish writes both documents where the issuer URL serves them', async () => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    const out = join(home, 'site');
    const r = await oz(['issuer', 'publish', '--out', out, '--issuer', 'https://oidc.example.com'], { env });
    expect(r.code).toBe(0);
    const disc = JSON.parse(readFileSync(join(out, '.well-known/openid-configuration'), 'utf8'));
    expect(disc.issuer).toBe('https://oidc.example.com');
    const jwks = JSON.parse(readFileSync(join(out, '.well-known/jwks.json'), 'utf8'));
    expect(jwks.keys).toHaveLength(1);
    expect(statSync(join(out, '.well-known/jwks.json')).mode & 0o777).toBe(0o644);
  });

  it('init is idempotent and reports the kid', async () => {
    const a = JSON.parse((await oz(['issuer', 'init', '--json'], { env })).stdout);
    const b = JSON.parse((await oz(['issuer', 'init', '--json'], { env })).stdout);
    expect(a).toMatchObject({ created: true, alg: 'RS256' });
    expect(b).toMatchObject({ created: false, kid: a.kid });
  });

  it('serve answers 404 and 405 as problem+json and shuts down cleanly on SIGTERM and SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const s = await serve(env);
      const disc = await fetch(`${s.url}/.well-known/openid-configuration`);
      expect(disc.status).toBe(200);
      expect(((await disc.json()) as { issuer: string }).issuer).toBe(s.url);
      const missing = await fetch(`${s.url}/nope`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toBe('application/problem+json');
      const wrong = await fetch(`${s.url}/.well-known/jwks.json`, { method: 'DELETE' });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('GET, HEAD');
      expect(await s.stop(signal)).toBe(0);
    }
  });

  it('serve refuses a bad port as a usage error', async () => {
    const r = await oz(['issuer', 'serve', '--port', '99999'], { env });
    expect(r).toMatchObject({ code: 2, stderr: 'oz: invalid --port "99999": expected 0–65535\n' });
  });
});
