import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { computeLifetime, readIssuerUrl, readRunIdentity, readRunLimits, runClaimsOf, SIGNING_ALG, type Env } from '../../core/context.js';
import { loadSigningKey } from '../../core/keys.js';
import { signJwt } from '../../core/jws.js';
import { IDENTITY_TOKEN_TYPE, type LocalFacts } from '../../core/claims.js';
import { readClaimFormats, formattedIdentityClaims, tokenLengthProblem } from '../../core/claim-formats.js';
import { OzError } from '../../core/errors.js';
import { readSetting } from '../../core/settings.js';
import { dataDir } from '../../core/paths.js';
import type { IssueRequest, IssuedToken } from './types.js';
import { debug } from '../../core/debug.js';

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
  const formats = readClaimFormats(env);
  // Checked before the key is loaded: a run whose claims a relying party would refuse gets no token.
  const shaped = formattedIdentityClaims(runClaimsOf(identity), { issuer, audience: request.audience, lifetimeSeconds: lifetime.seconds, now, jti: randomUUID() }, formats);
  if (!shaped.ok) throw new OzError('config', `cannot issue a token for ${request.audience}: ${shaped.problem} (${formatVariables(formats)})`);
  const claims = shaped.value;
  const key = loadSigningKey(await dataDir(env, cwd), { alg: readSetting(SIGNING_ALG, env)?.value });
  debug(`signing with key ${key.kid} (${key.alg}) for ${JSON.stringify(request.audience)}, lifetime ${lifetime.seconds}s (${lifetime.cappedBy})`);
  const token = signJwt({ alg: key.alg, kid: key.kid, typ: IDENTITY_TOKEN_TYPE }, claims, key.privateKey);
  const tooLong = tokenLengthProblem(token, request.audience);
  if (tooLong) throw new OzError('config', tooLong);
  return { token, expiresAt: new Date(claims.exp * 1000), claims: { ...claims }, lifetime };
}

/** The variables that shaped a token, for an error about its limits. */
function formatVariables(formats: { sessionTags?: unknown; subjectClaims?: unknown }): string {
  const set = [formats.sessionTags && 'OZ_AWS_SESSION_TAGS', formats.subjectClaims && 'OZ_SUBJECT_CLAIMS'].filter(Boolean);
  return set.length > 0 ? `from ${set.join(' and ')}` : 'from the run context';
}
