import { hostname, userInfo } from 'node:os';
import { readIssuerUrl, readRunIdentity, readRunLimits, runClaims, type Env, type LocalFacts } from '../../core/context.js';
import { loadSigningKey, parseAlg } from '../../core/keys.js';
import { signJwt } from '../../core/jwt.js';
import { computeLifetime, identityClaims, IDENTITY_TOKEN_TYPE } from '../../core/claims.js';
import { dataDir } from '../../core/paths.js';
import type { IssueRequest, IssuedToken } from './types.js';

export const localFacts: LocalFacts = {
  username() {
    try {
      return userInfo().username;
    } catch {
      // A uid without a passwd entry (common in containers) still gets an identity.
      return 'user';
    }
  },
  hostname,
};

/** Sign a token for the run described by the environment, with the key in the data directory. */
export async function issueEmbedded(env: Env, cwd: string, now: Date, request: IssueRequest): Promise<IssuedToken> {
  const limits = readRunLimits(env);
  const lifetime = computeLifetime(request.requestedSeconds, limits, now);
  const issuer = readIssuerUrl(env);
  const identity = readRunIdentity(env, localFacts);
  const alg = env.OZ_SIGNING_ALG ? parseAlg(env.OZ_SIGNING_ALG, 'config') : undefined;
  const key = loadSigningKey(await dataDir(env, cwd), { alg });
  const claims = identityClaims(runClaims(identity), { issuer, audience: request.audience, lifetimeSeconds: lifetime.seconds, now });
  const token = signJwt({ alg: key.alg, kid: key.kid, typ: IDENTITY_TOKEN_TYPE }, claims, key.privateKey);
  return { token, expiresAt: new Date(claims.exp * 1000), claims: { ...claims }, lifetime };
}
