import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';

/**
 * OZ_DEBUG=1 end to end: the trace says what oz did (settings and their sources, requests,
 * retries, files written) and never carries a token, and `--format gcp` stays silent.
 */

const NET = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1' };
const JWT = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/;
const GCP_AUD = '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1';

/** Every stderr line is a trace line, and none holds a token, a JWT or a bearer credential. */
function expectCleanTrace(stderr: string, secrets: string[]): string[] {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines.length).toBeGreaterThan(0);
  for (const l of lines) expect(l).toMatch(/^oz: debug: /);
  for (const s of secrets) expect(stderr).not.toContain(s);
  expect(stderr).not.toMatch(JWT);
  expect(stderr).not.toMatch(/bearer/i);
  return lines;
}

let serverEnv: Record<string, string>;
let service: Served;

beforeAll(async () => {
  serverEnv = scrubbedEnv(tempDir(), NET);
  service = await serve(serverEnv, ['--rate-limit', '0']);
});
afterAll(async () => {
  await service?.stop('SIGKILL');
});

describe('OZ_DEBUG, embedded issuer', () => {
  it('traces settings with their sources and the key it signs with, but not the token it prints', async () => {
    const env = scrubbedEnv(tempDir(), { OZ_DEBUG: '1', OZ_SUBJECT: 'user-42' });
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(JWT);
    const lines = expectCleanTrace(r.stderr, [token, token.split('.')[1]!, token.split('.')[2]!]);
    expect(lines).toContain('oz: debug: setting OZ_SUBJECT = "user-42" (from OZ_SUBJECT)');
    expect(lines).toContain('oz: debug: setting OZ_ISSUER_URL = "http://127.0.0.1:8787" (default)');
    expect(lines).toContain('oz: debug: token source: the embedded issuer (OZ_RUN_TOKEN is not set)');
    expect(lines.some((l) => /^oz: debug: created .*signing-key\.json \(\d+ bytes, mode 0600\)$/.test(l))).toBe(true);
  });

  it('traces the files prepare writes, never their contents', async () => {
    const home = tempDir();
    const env = scrubbedEnv(home, { OZ_DEBUG: '1', OZ_AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/agent' });
    const r = await oz(['federate', 'prepare'], { env });
    expect(r.code).toBe(0);
    const file = join(home, 'run', 'oz', 'aws-web-identity-token');
    const token = readFileSync(file, 'utf8');
    const lines = expectCleanTrace(r.stderr, [token]);
    expect(lines).toContain('oz: debug: setting OZ_AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/agent" (from OZ_AWS_ROLE_ARN)');
    expect(lines.some((l) => l.startsWith(`oz: debug: wrote ${file} (${token.length} bytes, mode 0600, renamed into place)`))).toBe(true);
  });

  it('is off when OZ_DEBUG is unset, empty or 0', async () => {
    for (const value of [undefined, '', '0']) {
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: scrubbedEnv(tempDir(), { OZ_DEBUG: value }) });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    }
  });

  it('writes nothing to stderr in --format gcp', async () => {
    const r = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: scrubbedEnv(tempDir(), { OZ_DEBUG: '1', GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD }) });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, success: true });
  });
});

describe('OZ_DEBUG, remote token service', () => {
  async function grant(): Promise<string> {
    const r = await oz(['issuer', 'grant-run', '--run-id', 'run-d', '--subject', 'user-d'], { env: { ...serverEnv, OZ_ISSUER_URL: service.url } });
    expect(r.code).toBe(0);
    return r.stdout.trim();
  }

  it('traces the request and its answer, redacting the run token', async () => {
    const runToken = await grant();
    const env = scrubbedEnv(tempDir(), { ...NET, OZ_DEBUG: '1', OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: service.url });
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    const lines = expectCleanTrace(r.stderr, [runToken, token, runToken.split('.')[2]!]);
    expect(lines).toContain('oz: debug: setting OZ_RUN_TOKEN = <redacted> (from OZ_RUN_TOKEN)');
    expect(lines).toContain('oz: debug: setting OZ_TOKEN_TIMEOUT = 15 (default)');
    expect(lines).toContain(`oz: debug: POST ${service.url}/v1/token (attempt 1 of at most 5, audience "sts.amazonaws.com", direct)`);
    expect(lines.some((l) => /^oz: debug: the token service answered HTTP 200 in \d+ ms: a token for "sts.amazonaws.com" until /.test(l))).toBe(true);
  });

  it('traces each failed attempt and the wait before the next', async () => {
    const runToken = await grant();
    const env = scrubbedEnv(tempDir(), { ...NET, OZ_DEBUG: '1', OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: 'http://127.0.0.1:9/v1/token', OZ_TOKEN_TIMEOUT: '2s' });
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r.code).toBe(5);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    // The failure itself is the last line, as always (worded by whether the attempts or the bound ran out first).
    expect(lines.at(-1)).toMatch(/^oz: (cannot reach )?the token service at http:\/\/127\.0\.0\.1:9\/v1\/token.*ECONNREFUSED/);
    expectCleanTrace(lines.slice(0, -1).join('\n'), [runToken]);
    expect(lines.some((l) => /^oz: debug: attempt 1 failed in \d+ ms: .*ECONNREFUSED/.test(l))).toBe(true);
    expect(lines.some((l) => /^oz: debug: retrying in \d+ ms$/.test(l))).toBe(true);
    expect(lines).toContain('oz: debug: POST http://127.0.0.1:9/v1/token (attempt 2 of at most 5, audience "a", direct)');
  });

  it('writes nothing to stderr in --format gcp, even when the service is down', async () => {
    const runToken = await grant();
    const env = scrubbedEnv(tempDir(), { ...NET, OZ_DEBUG: '1', OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: 'http://127.0.0.1:9/v1/token', OZ_TOKEN_TIMEOUT: '1s', GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
    const r = await oz(['federate', 'issue-token', '--format', 'gcp'], { env });
    expect(r.code).toBe(5);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
  });
});
