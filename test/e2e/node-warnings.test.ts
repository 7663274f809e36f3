import { describe, expect, it, beforeEach } from 'vitest';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';

/**
 * What Node itself writes to stderr when the environment asks for it, in `--format gcp`
 * (where Google's libraries merge stderr into the JSON they parse). The README's
 * issue-token section lists what oz silences and what it cannot.
 */
const GCP_AUD = '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q';

let env: Record<string, string>;
beforeEach(() => {
  env = scrubbedEnv(tempDir(), { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
});

/** A sandbox whose token service is https on a loopback port where nothing listens. */
async function remoteOverTls(extra: Record<string, string>) {
  const grant = await oz(['issuer', 'grant-run', '--run-id', 'r', '--subject', 's'], { env });
  expect(grant.code).toBe(0);
  return { ...env, OZ_RUN_TOKEN: grant.stdout.trim(), OZ_TOKEN_URL: 'https://127.0.0.1:1/v1/token', OZ_TOKEN_TIMEOUT: '2s', ...extra };
}

describe('Node warnings in --format gcp', () => {
  it('NODE_TLS_REJECT_UNAUTHORIZED=0: the warning Node emits on the first TLS connection is silenced', async () => {
    const sandbox = await remoteOverTls({ NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: sandbox });
    expect(gcp).toMatchObject({ code: 5, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ success: false, code: 'remote_unavailable' });
    // The other formats show it: the variable does reach Node, and the test can tell.
    const jwt = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox });
    expect(jwt.stderr).toContain("Setting the NODE_TLS_REJECT_UNAUTHORIZED environment variable to '0'");
  });

  it('NODE_EXTRA_CA_CERTS naming a missing file: Node warns before oz runs, so that line cannot be silenced', async () => {
    const r = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: { ...env, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem', NODE_NO_WARNINGS: '1' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ success: true });
    expect(r.stderr).toMatch(/^Warning: Ignoring extra certs from `\/nonexistent\/ca\.pem`, load failed: .*\n$/);
  });
});
