/**
 * The contract between the sandbox's token client and the platform's issuer: the paths the
 * issuer serves, what a run token is, and the problem types the token service answers with.
 * Both sides import it from here, so that neither imports the other.
 */

/** Paths the issuer serves, relative to the issuer URL. */
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/.well-known/jwks.json';
export const TOKEN_PATH = '/v1/token';

/**
 * A run token's JWT `typ` (identity tokens say `JWT`) and `aud`, which no relying party
 * expects and the token service refuses to issue: a grant can never pass for an identity token.
 */
export const RUN_TOKEN_TYPE = 'oz-run+jwt';
export const RUN_TOKEN_AUDIENCE = 'oz:token-service';

/** The problem type (RFC 9457) with which the token service refuses a grant past its deadline. */
export const RUN_EXPIRED_PROBLEM = 'urn:oz:problem:run-expired';

/** `POST ${TOKEN_PATH}`'s JSON body. */
export interface TokenRequestBody {
  audience: string;
  duration_seconds?: number;
}

/** The token service's answer to a good request. */
export interface TokenResponseBody {
  token: string;
  expires_at: string;
}
