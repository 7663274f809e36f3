import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { decodeJwt, type DecodedJwt } from '../../src/core/jwt.js';

/** A signer for evaluator tests: any header, any claims, RS256 or ES256. */
const keys: Record<'RS256' | 'ES256', { privateKey: KeyObject; jwk: Record<string, unknown> }> = {
  RS256: make('RS256'),
  ES256: make('ES256'),
};

function make(alg: 'RS256' | 'ES256') {
  const { privateKey, publicKey } = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: `kid-${alg}`, alg, use: 'sig' } };
}

export const NOW = new Date('2026-06-01T12:00:00Z');
export const T = Math.floor(NOW.getTime() / 1000);
export const ISSUER = 'https://oidc.example.com/oz';

export function jwksJson(): string {
  return JSON.stringify({ keys: [keys.RS256.jwk, keys.ES256.jwk] });
}

export interface Signed {
  text: string;
  decoded: DecodedJwt;
}

export function signToken(claims: Record<string, unknown>, opts: { alg?: 'RS256' | 'ES256'; header?: Record<string, unknown> } = {}): Signed {
  const alg = opts.alg ?? 'RS256';
  const header = { alg, kid: `kid-${alg}`, typ: 'JWT', ...opts.header };
  const payload = {
    iss: ISSUER,
    sub: 'user-42',
    aud: 'sts.amazonaws.com',
    iat: T - 30,
    nbf: T - 30,
    exp: T + 3600,
    jti: 'j',
    run_id: 'run-1',
    teams: ['team-a'],
    environment: 'env-1',
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete (payload as Record<string, unknown>)[k];
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const key = keys[alg].privateKey;
  const sig = cryptoSign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  const text = `${input}.${sig.toString('base64url')}`;
  const decoded = decodeJwt(text);
  if (!decoded.ok) throw new Error(decoded.problem);
  return { text, decoded: decoded.value };
}
