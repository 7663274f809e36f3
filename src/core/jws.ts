import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { b64urlJson, type JwtHeader, type SigningAlg } from './jwt.js';

/**
 * Signing a token is the hot path of every credential refresh, so it runs on node:crypto alone
 * rather than paying for loading a JOSE library. A module of its own, so that what only decodes
 * tokens (the remote token source) does not load node:crypto.
 */

function signOptions(key: KeyObject, alg: SigningAlg): KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' } {
  // JWS wants the raw r||s form of an ECDSA signature, not node's default DER.
  return alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
}

export function signJwt(header: JwtHeader, payload: object, key: KeyObject): string {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  const sig = cryptoSign('sha256', Buffer.from(input), signOptions(key, header.alg));
  return `${input}.${sig.toString('base64url')}`;
}

/** Signs on libuv's thread pool, so a server signs on every core while its event loop serves. */
export function signJwtAsync(header: JwtHeader, payload: object, key: KeyObject): Promise<string> {
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  return new Promise((resolve, reject) => {
    cryptoSign('sha256', Buffer.from(input), signOptions(key, header.alg), (err, sig) => {
      if (err) reject(err);
      else resolve(`${input}.${sig.toString('base64url')}`);
    });
  });
}

