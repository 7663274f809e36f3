import { beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import { b64urlJson, decodeJwt, SIGNING_ALGS, type JwtHeader, type SigningAlg } from '../../src/core/jwt.js';
import { signJwt, signJwtAsync } from '../../src/core/jws.js';

const part = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const H = part({ alg: 'RS256', kid: 'k', typ: 'JWT' });
const P = part({ sub: 's', aud: 'a' });
const S = Buffer.from('signature').toString('base64url');

const keys = {} as Record<SigningAlg, KeyObject>;
beforeAll(() => {
  keys.RS256 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  keys.ES256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
});

const header = (alg: SigningAlg): JwtHeader => ({ alg, kid: `kid-${alg}`, typ: 'JWT' });
const payload = { iss: 'https://issuer.example.com', sub: 'run-1', aud: 'sts.amazonaws.com', exp: 2_000_000_000, name: 'ü €' };

describe('signing', () => {
  it('knows the two algorithms it signs with, RSA first', () => {
    expect(SIGNING_ALGS).toEqual(['RS256', 'ES256']);
  });

  it('b64urlJson is the JSON text in unpadded base64url', () => {
    expect(b64urlJson({ a: '?>' })).toBe('eyJhIjoiPz4ifQ');
    expect(Buffer.from(b64urlJson(payload), 'base64url').toString('utf8')).toBe(JSON.stringify(payload));
  });

  it.each(['RS256', 'ES256'] as const)('%s: a JWS that jose verifies, with header and payload as given', async (alg) => {
    const token = signJwt(header(alg), payload, keys[alg]);
    const [h, p] = token.split('.');
    expect(h).toBe(b64urlJson(header(alg)));
    expect(p).toBe(b64urlJson(payload));
    const verified = await jwtVerify(token, createPublicKey(keys[alg]), { algorithms: [alg] });
    expect(verified.protectedHeader).toEqual(header(alg));
    expect(verified.payload).toEqual(payload);
  });

  it('ES256 signatures are the 64-byte r||s that JWS wants, not DER', () => {
    const sig = Buffer.from(signJwt(header('ES256'), payload, keys.ES256).split('.')[2]!, 'base64url');
    expect(sig).toHaveLength(64);
  });

  it('signJwtAsync signs exactly as signJwt does (RS256 is deterministic)', async () => {
    expect(await signJwtAsync(header('RS256'), payload, keys.RS256)).toBe(signJwt(header('RS256'), payload, keys.RS256));
  });

  it('signJwtAsync makes an ES256 JWS that verifies', async () => {
    const token = await signJwtAsync(header('ES256'), payload, keys.ES256);
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(`${h}.${p}`).toBe(`${b64urlJson(header('ES256'))}.${b64urlJson(payload)}`);
    const sig = Buffer.from(s, 'base64url');
    expect(sig).toHaveLength(64);
    expect(verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey(keys.ES256), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
  });

  it('signJwtAsync rejects when the key cannot sign', async () => {
    const ed = generateKeyPairSync('ed25519').privateKey;
    await expect(signJwtAsync(header('RS256'), payload, ed)).rejects.toThrow(/digest/);
  });
});

describe('decodeJwt', () => {
  it('returns header, payload, signing input and signature bytes', () => {
    expect(decodeJwt(`${H}.${P}.${S}`)).toEqual({ ok: true, value: {
      header: { alg: 'RS256', kid: 'k', typ: 'JWT' },
      payload: { sub: 's', aud: 'a' },
      signingInput: `${H}.${P}`,
      signature: Buffer.from('signature'),
    } });
  });

  it('decodes what it signed', () => {
    const token = signJwt(header('ES256'), payload, keys.ES256);
    const d = decodeJwt(token);
    expect(d.ok && d.value).toMatchObject({ header: header('ES256'), payload, signingInput: token.split('.').slice(0, 2).join('.') });
  });

  it('takes an empty signature, which no verification accepts', () => {
    expect(decodeJwt(`${H}.${P}.`)).toMatchObject({ ok: true, value: { signature: Buffer.alloc(0) } });
  });

  it.each([
    ['abc', 'expected 3 dot-separated parts, found 1'],
    [`${H}.${P}`, 'expected 3 dot-separated parts, found 2'],
    [`${H}.${P}.${S}.x`, 'expected 3 dot-separated parts, found 4'],
    [`${H}.x.y.${P}.${S}`, 'it is an encrypted JWE, not a signed JWT'],
    ['', 'expected 3 dot-separated parts, found 1'],
    [`${H}+.${P}.${S}`, 'a part is not base64url'],
    [`${H}.${P}/.${S}`, 'a part is not base64url'],
    [`${H}.${P}.${S}=`, 'a part is not base64url'],
    [`${H}.${P}.a b`, 'a part is not base64url'],
    [`=${H}.${P}.${S}`, 'a part is not base64url'],
    [`${H}.${P}.${S}\n`, 'a part is not base64url'],
    [`.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${part('{"alg"')}.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${part([1])}.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${part('null')}.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${part('"RS256"')}.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${part(7)}.${P}.${S}`, 'the header is not a base64url JSON object'],
    [`${H}..${S}`, 'the payload is not a base64url JSON object'],
    [`${H}.${part('not json')}.${S}`, 'the payload is not a base64url JSON object'],
    [`${H}.${part([{ sub: 's' }])}.${S}`, 'the payload is not a base64url JSON object'],
    [`${H}.${part('null')}.${S}`, 'the payload is not a base64url JSON object'],
    [`${H}.${part('true')}.${S}`, 'the payload is not a base64url JSON object'],
  ])('refuses %j: %s', (token, reason) => {
    expect(decodeJwt(token)).toEqual({ ok: false, problem: reason });
  });
});
