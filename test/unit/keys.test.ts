import { describe, expect, it, beforeEach } from 'vitest';
import { ozError } from '../helpers/thrown.js';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKey } from 'node:crypto';
import { jwkThumbprint, loadSigningKey, publicJwk, publishedKeys, rotateSigningKey, RETIRED_KEY_GRACE_SECONDS, RETIRED_KEYS_FILE, SIGNING_KEY_FILE } from '../../src/core/keys.js';
import { isSharedDir } from '../../src/core/securefile.js';
import { OzError } from '../../src/core/errors.js';

let dir: string;
beforeEach(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'oz-keys-')), 'data');
});


describe('jwkThumbprint', () => {
  it.each([
    ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' })],
    ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })],
  ])('matches RFC 7638 as jose computes it for %s', async (_n, make) => {
    const jwk = make();
    expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0]));
  });

  it('matches the RFC 7638 section 3.1 example', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    expect(jwkThumbprint({ kty: 'RSA', n, e: 'AQAB' })).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });
});

describe('key store', () => {
  it('creates an RS256 key on first use: 0600 file in a 0700 directory, kid = thumbprint', () => {
    const key = loadSigningKey(dir);
    expect(key.alg).toBe('RS256');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(key.kid).toBe(publicJwk(key.privateKey, 'RS256').kid);
    expect(loadSigningKey(dir).kid).toBe(key.kid);
  });

  it('keeps the key as a JWK, and reads a PKCS#8 PEM key brought in by hand', () => {
    const created = loadSigningKey(dir);
    const stored = JSON.parse(readFileSync(join(dir, SIGNING_KEY_FILE), 'utf8'));
    expect(stored.private_jwk).toMatchObject({ kty: 'RSA' });
    const pem = created.privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(dir, SIGNING_KEY_FILE), JSON.stringify({ kid: created.kid, alg: 'RS256', private_key: pem }), { mode: 0o600 });
    expect(publicJwk(loadSigningKey(dir).privateKey, 'RS256').kid).toBe(created.kid);
  });

  it('creates ES256 when asked', () => {
    const key = loadSigningKey(dir, { alg: 'ES256' });
    expect(key.alg).toBe('ES256');
    expect(key.privateKey.asymmetricKeyType).toBe('ec');
  });

  it('never publishes a private member', () => {
    loadSigningKey(dir);
    for (const jwk of publishedKeys(dir, new Date())) {
      for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(m);
    }
  });

  it.each([
    ['not JSON', 'garbage', /is unusable \(not valid JSON\); oz will not replace it/],
    ['a key that does not parse', JSON.stringify({ kid: 'k', alg: 'RS256', private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), /the private key does not parse/],
    ['an unknown alg', JSON.stringify({ kid: 'k', alg: 'HS256', private_key: 'x' }), /unsupported alg "HS256"/],
    ['a JWK that does not import', JSON.stringify({ kid: 'k', alg: 'RS256', private_jwk: { kty: 'RSA', n: 'AQAB' } }), /the private key does not parse/],
    ['no key at all', JSON.stringify({ kid: 'k', alg: 'RS256' }), /missing kid or private key/],
    ['an EC key called RS256', JSON.stringify({ kid: 'k', alg: 'RS256', private_jwk: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) }), /the key is not an RSA key/],
    ['an empty file', '', /not valid JSON/],
  ])('refuses a corrupt key file (%s) and leaves it in place', (_n, content, message) => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, SIGNING_KEY_FILE), content, { mode: 0o600 });
    const e = ozError(() => loadSigningKey(dir));
    expect(e.code).toBe('config');
    expect(e.message).toMatch(message);
    expect(readFileSync(join(dir, SIGNING_KEY_FILE), 'utf8')).toBe(content);
  });

  describe('refuses a key whose parts do not belong together, before it signs anything', () => {
    const flip = (s: string, i = 10) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const withKid = (jwk: JsonWebKey) => jwkThumbprint(createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' }));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const rsaKid = withKid(rsa);
    const ecKid = withKid(ec);
    const nFlipped = { ...rsa, n: flip(rsa.n!) };
    const eChanged = { ...rsa, e: 'AQAD' };
    const otherPoint = { ...ec, x: other.x, y: other.y };

    it.each([
      ['RSA: one character of n changed', 'RS256', nFlipped, rsaKid, /its public modulus n is not the product of its primes p and q/],
      ['RSA: n changed and kid made to match it', 'RS256', nFlipped, withKid(nFlipped), /its public modulus n is not the product/],
      ['RSA: n set to AAAA', 'RS256', { ...rsa, n: 'AAAA' }, rsaKid, /its public modulus n is not the product/],
      ['RSA: e changed and kid made to match it', 'RS256', eChanged, withKid(eChanged), /its public exponent e does not match its private exponents/],
      ['RSA: dp changed', 'RS256', { ...rsa, dp: flip(rsa.dp!) }, rsaKid, /its public exponent e does not match/],
      ['RSA: qi changed', 'RS256', { ...rsa, qi: flip(rsa.qi!) }, rsaKid, /its public exponent e does not match/],
      ['RSA: kid changed', 'RS256', rsa, flip(rsaKid), new RegExp(`its kid "${flip(rsaKid)}" is not the key's RFC 7638 thumbprint "${rsaKid}"`)],
      ['EC: another key\'s public point, kid made to match it', 'ES256', otherPoint, withKid(otherPoint), /its public point x, y is not the one its private scalar d gives/],
      ['EC: d changed', 'ES256', { ...ec, d: flip(ec.d!) }, ecKid, /its public point x, y is not the one/],
      ['EC: kid changed', 'ES256', ec, 'not-the-thumbprint', /its kid "not-the-thumbprint" is not the key's RFC 7638 thumbprint/],
    ])('%s', (_n, alg, jwk, kid, message) => {
      mkdirSync(dir, { mode: 0o700 });
      const content = JSON.stringify({ kid, alg, created_at: '2026-01-01T00:00:00Z', private_jwk: jwk });
      writeFileSync(join(dir, SIGNING_KEY_FILE), content, { mode: 0o600 });
      const e = ozError(() => loadSigningKey(dir));
      expect(e.code).toBe('config');
      expect(e.message).toMatch(/^signing key ".*signing-key\.json" is unusable \(/);
      expect(e.message).toMatch(message);
      expect(readFileSync(join(dir, SIGNING_KEY_FILE), 'utf8')).toBe(content);
    });

    it('checks a PEM key brought in by hand against its kid too', () => {
      mkdirSync(dir, { mode: 0o700 });
      const pem = createPrivateKey({ key: rsa, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
      writeFileSync(join(dir, SIGNING_KEY_FILE), JSON.stringify({ kid: ecKid, alg: 'RS256', private_key: pem }), { mode: 0o600 });
      expect(ozError(() => loadSigningKey(dir)).message).toMatch(/its kid ".*" is not the key's RFC 7638 thumbprint/);
      writeFileSync(join(dir, SIGNING_KEY_FILE), JSON.stringify({ kid: rsaKid, alg: 'RS256', private_key: pem }), { mode: 0o600 });
      expect(loadSigningKey(dir).kid).toBe(rsaKid);
    });

    it.each([
      ['RS256', rsa, rsaKid],
      ['ES256', ec, ecKid],
    ])('accepts a sound %s key, and what it signs verifies under the key the JWKS publishes', (alg, jwk, kid) => {
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, SIGNING_KEY_FILE), JSON.stringify({ kid, alg, private_jwk: jwk }), { mode: 0o600 });
      const key = loadSigningKey(dir);
      const [published] = publishedKeys(dir, new Date(), { create: false });
      expect(published!.kid).toBe(key.kid);
      const data = Buffer.from('payload');
      const sig = sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      expect(verify('sha256', data, { key: createPublicKey({ key: published!, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    });
  });

  it('refuses a key file readable by others', () => {
    loadSigningKey(dir);
    chmodSync(join(dir, SIGNING_KEY_FILE), 0o644);
    expect(ozError(() => loadSigningKey(dir)).message).toMatch(/readable by other users \(mode 644\)/);
  });

  it('refuses a key file that is a symlink', () => {
    mkdirSync(dir, { mode: 0o700 });
    const elsewhere = join(dir, '..', 'elsewhere.json');
    writeFileSync(elsewhere, '{}', { mode: 0o600 });
    symlinkSync(elsewhere, join(dir, SIGNING_KEY_FILE));
    expect(ozError(() => loadSigningKey(dir)).message).toMatch(/it is a symbolic link/);
  });

  it.each([
    [0o770, 'mode 770'],
    [0o707, 'mode 707'],
    [0o755, 'mode 755'],
  ])('refuses a data directory with mode %o', (mode, message) => {
    mkdirSync(dir);
    chmodSync(dir, mode);
    const e = ozError(() => loadSigningKey(dir));
    expect(e.code).toBe('config');
    expect(e.message).toContain(message);
  });

  it('rotate keeps the old public key published until its tokens have expired', () => {
    const old = loadSigningKey(dir);
    const t0 = new Date();
    const r = rotateSigningKey(dir, t0);
    expect(r.previous.kid).toBe(old.kid);
    expect(r.current.kid).not.toBe(old.kid);
    expect(loadSigningKey(dir).kid).toBe(r.current.kid);
    expect(publishedKeys(dir, t0).map((k) => k.kid).sort()).toEqual([old.kid, r.current.kid].sort());
    const later = new Date(t0.getTime() + (RETIRED_KEY_GRACE_SECONDS + 1) * 1000);
    expect(publishedKeys(dir, later).map((k) => k.kid)).toEqual([r.current.kid]);
  });

  it('rotate can change the algorithm', () => {
    loadSigningKey(dir);
    const r = rotateSigningKey(dir, new Date(), 'ES256');
    expect(r.current.alg).toBe('ES256');
    expect(publishedKeys(dir, new Date()).map((k) => k.kty).sort()).toEqual(['EC', 'RSA']);
  });

  describe('retired-keys.json', () => {
    const retire = () => {
      loadSigningKey(dir);
      rotateSigningKey(dir, new Date());
      const file = join(dir, RETIRED_KEYS_FILE);
      return { file, doc: JSON.parse(readFileSync(file, 'utf8')) as { keys: { jwk: Record<string, unknown>; keep_until: string }[] } };
    };

    it('publishes only the public members of an entry, whatever else it holds', () => {
      const { file, doc } = retire();
      const stray = { d: 'c2VjcmV0', p: 'c2VjcmV0', note: 'x', key_ops: ['sign'] };
      Object.assign(doc.keys[0]!.jwk, stray);
      writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
      const retired = publishedKeys(dir, new Date()).find((k) => k.kid === doc.keys[0]!.jwk.kid)!;
      expect(Object.keys(retired).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    });

    it.each([
      ['a null entry', (d: { keys: unknown[] }) => d.keys.push(null), /entry 1: expected an object, found null/],
      ['a string entry', (d: { keys: unknown[] }) => (d.keys[0] = 'key'), /entry 0: expected an object, found string/],
      ['no jwk', (d: { keys: { jwk?: unknown }[] }) => delete d.keys[0]!.jwk, /entry 0: no "jwk" object/],
      ['a keep_until that is no date', (d: { keys: { keep_until: string }[] }) => (d.keys[0]!.keep_until = 'soon'), /entry 0: "keep_until" is not a date/],
      ['n set to ""', (d: { keys: { jwk: Record<string, unknown> }[] }) => (d.keys[0]!.jwk.n = ''), /entry 0: "n" is not a base64url string/],
      ['an HS256 key', (d: { keys: { jwk: Record<string, unknown> }[] }) => (d.keys[0]!.jwk = { kty: 'oct', k: 'c2VjcmV0', alg: 'HS256', kid: 'k' }), /entry 0: not an RS256 RSA key or an ES256 P-256 key/],
      ['n changed', (d: { keys: { jwk: Record<string, unknown> }[] }) => (d.keys[0]!.jwk.n = `${String(d.keys[0]!.jwk.n).slice(0, -4)}AAAA`), /entry 0: its kid ".*" is not the key's RFC 7638 thumbprint/],
      ['an EC point off the curve', (d: { keys: { jwk: Record<string, unknown> }[] }) => (d.keys[0]!.jwk = { kty: 'EC', crv: 'P-256', alg: 'ES256', kid: 'k', x: 'AAAA', y: 'AAAA' }), /entry 0: the key does not import/],
    ])('refuses %s, naming the file (exit 3)', (_n, change, message) => {
      const { file, doc } = retire();
      change(doc as never);
      writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
      const e = ozError(() => publishedKeys(dir, new Date()));
      expect(e.code).toBe('config');
      expect(e.message).toMatch(/^retired key list ".*retired-keys\.json" is corrupt \(/);
      expect(e.message).toMatch(message);
    });
  });

  it('rotate without a key says to run init', () => {
    expect(ozError(() => rotateSigningKey(dir, new Date())).message).toMatch(/no signing key .* run `oz issuer init` first/);
  });
});

describe('isSharedDir: where chmod 700 is never the advice', () => {
  it.each([
    ['/tmp', 0o41777, true],
    ['/', 0o40755, true],
    ['/usr', 0o40755, true],
    ['/srv', 0o40755, true],
    ['/var/tmp', 0o41777, true],
    ['/usr/local', 0o40755, true],
    ['/var/lib', 0o40755, true],
    ['/home/me/shared', 0o41777, true],
    ['/srv/oz', 0o40755, false],
    ['/home/me/.local/share/oz', 0o40755, false],
    ['/var/lib/oz', 0o40770, false],
  ])('%s (mode %o): %s', (dir, mode, shared) => {
    expect(isSharedDir(dir, mode)).toBe(shared);
  });
});
