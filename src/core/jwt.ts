import { ok, problem, type Parsed } from './errors.js';

/**
 * JWS compact serialisation: decoding here, signing in jws.ts. Decoding needs no node:crypto,
 * so the remote token source, which only reads the tokens it is given, never loads it.
 * Verification, which is rare on the client, uses jose (see sandbox/verify.ts).
 */

export type SigningAlg = 'RS256' | 'ES256';
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'ES256'];

export interface JwtHeader {
  alg: SigningAlg;
  kid: string;
  typ: string;
}

export function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

/** Split and decode a compact JWS, or say why the text is not one. */
export function decodeJwt(token: string): Parsed<DecodedJwt> {
  const parts = token.split('.');
  if (parts.length !== 3) {
    return problem(parts.length === 5 ? 'it is an encrypted JWE, not a signed JWT' : `expected 3 dot-separated parts, found ${parts.length}`);
  }
  const [h, p, s] = parts as [string, string, string];
  const b64url = /^[A-Za-z0-9_-]*$/;
  if (!b64url.test(h) || !b64url.test(p) || !b64url.test(s)) return problem('a part is not base64url');
  const header = parseJsonObject(h);
  if (!header) return problem('the header is not a base64url JSON object');
  const payload = parseJsonObject(p);
  if (!payload) return problem('the payload is not a base64url JSON object');
  return ok({ header, payload, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') });
}

function parseJsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
