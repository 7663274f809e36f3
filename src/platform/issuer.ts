import type { PublicJwk } from '../core/keys.js';
import { SIGNING_ALGS } from '../core/jwt.js';
import { JWKS_PATH } from '../core/wire.js';
import { CLAIMS_SUPPORTED } from '../core/claims.js';

export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  id_token_signing_alg_values_supported: string[];
  response_types_supported: string[];
  subject_types_supported: string[];
  claims_supported: string[];
  [extra: string]: unknown;
}

/**
 * The OpenID Provider metadata that AWS and GCP fetch from `${issuer}${DISCOVERY_PATH}`.
 * oz issues tokens by itself rather than through an authorization endpoint, yet relying
 * parties still require the response/subject type members to be present.
 */
export function discoveryDocument(issuer: string): DiscoveryDocument {
  return {
    issuer,
    jwks_uri: `${issuer}${JWKS_PATH}`,
    id_token_signing_alg_values_supported: [...SIGNING_ALGS],
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    claims_supported: [...CLAIMS_SUPPORTED],
  };
}

export function jwksDocument(keys: readonly PublicJwk[]): { keys: PublicJwk[] } {
  return { keys: [...keys] };
}
