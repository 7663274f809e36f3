import { join } from 'node:path';

/**
 * The run context a platform sets, for the builds' own runs of the hot path: the code cache of
 * dist/cli.cjs (tsup.config.ts) and the single executable's snapshot (sea.ts) hold the code
 * these values take (an issuer URL to parse, run claims, the gcp format's variables), so that
 * a real call does not compile it. `dir` is the build's throwaway directory.
 */
export function rehearsalEnv(dir: string): Record<string, string> {
  return {
    OZ_DATA_DIR: join(dir, 'data'),
    OZ_ISSUER_URL: 'https://issuer.example.com',
    OZ_RUN_ID: 'rehearsal',
    OZ_SUBJECT: 'rehearsal',
    OZ_TEAMS: 'rehearsal',
    OZ_ENVIRONMENT_ID: 'rehearsal',
    OZ_AGENT_NAME: 'rehearsal',
    OZ_SKILL_SPEC: 'rehearsal',
    OZ_HOST: 'rehearsal',
    OZ_MAX_RUN_DURATION: '4h',
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1',
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt',
    GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: join(dir, 'gcp-output.json'),
  };
}
