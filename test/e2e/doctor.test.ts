import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { startProxyTrap } from '../helpers/proxy-trap.js';

/**
 * `oz doctor` end to end: the built CLI against a real `oz issuer serve` on loopback, and
 * environments broken the ways runs break. Every request stays on 127.0.0.1; anything that
 * tried to leave would meet the dead proxy at 127.0.0.1:9.
 */

const NET = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1', AWS_EC2_METADATA_DISABLED: 'true', GCE_METADATA_HOST: '127.0.0.1:9' };

interface Report {
  ok: boolean;
  mode: string;
  checks: { id: string; status: 'ok' | 'warn' | 'fail'; finding: string; fix: string | null }[];
  counts: { ok: number; warn: number; fail: number };
}

async function doctor(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await oz(['doctor', '--json', ...args], { env, timeoutMs: 30_000 });
  return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

const statuses = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.id, c.status]));
const check = (r: Report, id: string) => r.checks.find((c) => c.id === id)!;

let serverHome: string;
let serverEnv: Record<string, string>;
let service: Served;

beforeAll(async () => {
  serverHome = tempDir();
  serverEnv = scrubbedEnv(serverHome, NET);
  service = await serve(serverEnv, ['--rate-limit', '0']);
});
afterAll(async () => {
  await service?.stop('SIGKILL');
});

describe('oz doctor, embedded issuer', () => {
  it('passes with the key published by `oz issuer serve`, warning only that the issuer is loopback http', async () => {
    const { code, report, stderr } = await doctor({ ...serverEnv, OZ_ISSUER_URL: service.url, OZ_RUN_DEADLINE: '2099-01-01T00:00:00Z' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.mode).toBe('embedded');
    expect(statuses(report)).toEqual({
      signing_key: 'ok',
      issuer_url: 'warn',
      discovery: 'ok',
      jwks: 'ok',
      run_time: 'ok',
      aws_static_keys: 'ok',
      gcp_credentials: 'ok',
      prepared_files: 'ok',
    });
    const kid = /key (\S+) \(/.exec(check(report, 'signing_key').finding)![1];
    expect(check(report, 'jwks').finding).toContain(`holds the signing key ${kid}`);
    expect(check(report, 'issuer_url').finding).toMatch(/is http and names this machine \(loopback\)/);
    expect(check(report, 'issuer_url').fix).toMatch(/public https URL/);
    expect(report.counts).toEqual({ ok: 7, warn: 1, fail: 0 });
  });

  it('prints the same checks as text, one line each and a fix under each problem', async () => {
    const r = await oz(['doctor'], { env: { ...serverEnv, OZ_ISSUER_URL: service.url } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^✓ signing_key: /m);
    expect(r.stdout).toMatch(/^! issuer_url: .*\n {2}fix: host the issuer at a public https URL/m);
    expect(r.stdout).toMatch(/\n7 checks ok, 1 warning, 0 failures\n$/);
    // Piped, so no colour.
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('fails a run with an AWS role and static AWS keys, never printing the secret', async () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const env = { ...serverEnv, OZ_ISSUER_URL: service.url, OZ_AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/agent', AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE', AWS_SECRET_ACCESS_KEY: secret };
    const r = await oz(['doctor', '--json'], { env });
    expect(r.code).toBe(10);
    expect(r.stdout).not.toContain(secret);
    expect(r.stdout).not.toContain('AKIAIOSFODNN7EXAMPLE');
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ok).toBe(false);
    expect(check(report, 'aws_static_keys')).toEqual({
      id: 'aws_static_keys',
      status: 'fail',
      finding: 'AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY are set: the AWS SDKs and CLI use static keys before web identity, so the role is never assumed',
      fix: 'unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY',
    });
    // With a cloud configured, a loopback http issuer is a failure, not a warning.
    expect(check(report, 'issuer_url').status).toBe('fail');
  });

  it('only warns about static AWS keys when no AWS role is configured', async () => {
    const { code, report } = await doctor({ ...serverEnv, OZ_ISSUER_URL: service.url, AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE' });
    expect(code).toBe(0);
    expect(check(report, 'aws_static_keys').status).toBe('warn');
  });

  it('fails a run past its deadline and warns one about to end', async () => {
    const past = await doctor({ ...serverEnv, OZ_ISSUER_URL: service.url, OZ_RUN_DEADLINE: '2020-01-01T00:00:00Z' });
    expect(past.code).toBe(10);
    expect(check(past.report, 'run_time')).toMatchObject({ status: 'fail', fix: 'start a new run' });
    expect(check(past.report, 'run_time').finding).toMatch(/^the run's deadline 2020-01-01T00:00:00Z \(OZ_RUN_DEADLINE\) passed \S+ ago: no token can be issued for this run$/);
    const soon = await doctor({ ...serverEnv, OZ_ISSUER_URL: service.url, OZ_RUN_DEADLINE: String(Math.floor(Date.now() / 1000) + 120) });
    expect(soon.code).toBe(0);
    expect(check(soon.report, 'run_time').status).toBe('warn');
    expect(check(soon.report, 'run_time').finding).toMatch(/^only 1m\d+s|^only 2m left/);
  });

  it('fails when prepared files a cloud needs are missing, and checks the tokens of those present', async () => {
    const home = tempDir();
    const dir = join(home, 'prep');
    const env = { ...scrubbedEnv(home, NET), OZ_DATA_DIR: serverEnv.OZ_DATA_DIR!, OZ_ISSUER_URL: service.url, OZ_PREPARE_DIR: dir, OZ_AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/agent' };
    const missing = await doctor(env);
    expect(missing.code).toBe(10);
    expect(check(missing.report, 'file:aws-web-identity-token')).toEqual({
      id: 'file:aws-web-identity-token',
      status: 'fail',
      finding: `${dir}/aws-web-identity-token is missing, and OZ_AWS_ROLE_ARN is set`,
      fix: 'run `eval "$(oz federate prepare)"`',
    });

    const prepared = await oz(['federate', 'prepare', '--shell', 'json'], { env });
    expect(prepared.code).toBe(0);
    const exported = JSON.parse(prepared.stdout) as Record<string, string>;
    const good = await doctor({ ...env, ...exported });
    expect(check(good.report, 'file:aws-web-identity-token').status).toBe('ok');
    expect(check(good.report, 'file:aws-web-identity-token').finding).toMatch(/^the token in .* for "sts.amazonaws.com" is valid for /);

    // A token file that has outlived its token, as one left from an earlier run.
    const expiredToken = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ aud: 'vault', exp: 1_600_000_000 })).toString('base64url')}.c2ln`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vault-token'), expiredToken, { mode: 0o600 });
    const stale = await doctor({ ...env, ...exported });
    expect(stale.code).toBe(10);
    expect(check(stale.report, 'file:vault-token')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/oz federate prepare/) });
    expect(check(stale.report, 'file:vault-token').finding).toMatch(/for "vault" expired at 2020-09-13T12:26:40Z/);

    // A FIFO planted in the directory is skipped, not waited on.
    expect(spawnSync('mkfifo', [join(dir, 'planted')]).status).toBe(0);
    const fifo = await doctor({ ...env, ...exported });
    expect(fifo.report.checks.some((c) => c.id === 'file:planted')).toBe(false);
    expect(check(fifo.report, 'file:aws-web-identity-token').status).toBe('ok');
  });

  it('fails when GOOGLE_APPLICATION_CREDENTIALS points away from the config prepare wrote', async () => {
    const home = tempDir();
    const other = join(home, 'sa-key.json');
    writeFileSync(other, '{"type":"service_account"}');
    const env = { ...serverEnv, OZ_ISSUER_URL: service.url, OZ_PREPARE_DIR: join(home, 'prep'), OZ_GCP_PROJECT_NUMBER: '123', OZ_GCP_POOL_ID: 'pool-1', OZ_GCP_PROVIDER_ID: 'prov-1', GOOGLE_APPLICATION_CREDENTIALS: other };
    const { code, report } = await doctor(env);
    expect(code).toBe(10);
    expect(check(report, 'gcp_credentials').status).toBe('fail');
    expect(check(report, 'gcp_credentials').finding).toContain(`points to "${other}", not to the config prepare writes`);
  });
});

describe('oz doctor, remote token service', () => {
  async function grant(): Promise<string> {
    const r = await oz(['issuer', 'grant-run', '--run-id', 'run-7', '--subject', 'user-7', '--max-duration', '1h'], { env: { ...serverEnv, OZ_ISSUER_URL: service.url } });
    expect(r.code).toBe(0);
    return r.stdout.trim();
  }

  it('passes with the service up: discovery, the run token kid in the JWKS, the run token accepted', async () => {
    const runToken = await grant();
    const home = tempDir();
    const { code, report, stderr } = await doctor({ ...scrubbedEnv(home, NET), OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: service.url });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report.mode).toBe('remote');
    expect(statuses(report)).toMatchObject({ run_token: 'ok', issuer_url: 'warn', discovery: 'ok', jwks: 'ok', token_service: 'ok', run_token_issuer: 'ok', run_time: 'ok' });
    expect(check(report, 'token_service').finding).toBe(`the token service at ${service.url}/v1/token accepted the run token (a test token for audience oz:doctor was issued and discarded)`);
    expect(check(report, 'run_time').finding).toMatch(/^59m\d+s left|^1h left/);
    expect(JSON.stringify(report)).not.toContain(runToken);
  });

  it("fails when OZ_ISSUER_URL is not the run token's issuer", async () => {
    const runToken = await grant();
    const { code, report } = await doctor({ ...scrubbedEnv(tempDir(), NET), OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: 'https://oidc.example.com', OZ_TOKEN_URL: `${service.url}/v1/token` });
    expect(code).toBe(10);
    expect(check(report, 'run_token_issuer')).toMatchObject({ status: 'fail', fix: `set OZ_ISSUER_URL=${service.url}, or unset it` });
  });

  it('fails, within seconds, when the service is down', async () => {
    const down = await serve(serverEnv, ['--rate-limit', '0']);
    const runToken = (await oz(['issuer', 'grant-run', '--run-id', 'run-8', '--subject', 'user-8'], { env: { ...serverEnv, OZ_ISSUER_URL: down.url } })).stdout.trim();
    await down.stop('SIGKILL');
    const started = Date.now();
    const { code, report } = await doctor({ ...scrubbedEnv(tempDir(), NET), OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: down.url });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(code).toBe(10);
    expect(check(report, 'token_service').status).toBe('fail');
    expect(check(report, 'token_service').finding).toMatch(new RegExp(`^cannot reach the token service at ${down.url}/v1/token: .*ECONNREFUSED`));
    expect(check(report, 'discovery').status).toBe('warn');
    expect(report.checks.some((c) => c.id === 'jwks')).toBe(false);
  });

  it('counts a 403 from an audience allow-list as the run token accepted', async () => {
    const limited = await serve({ ...serverEnv, OZ_ALLOWED_AUDIENCES: 'sts.amazonaws.com' }, ['--rate-limit', '0']);
    try {
      const runToken = (await oz(['issuer', 'grant-run', '--run-id', 'run-9', '--subject', 'user-9'], { env: { ...serverEnv, OZ_ISSUER_URL: limited.url } })).stdout.trim();
      const { code, report } = await doctor({ ...scrubbedEnv(tempDir(), NET), OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: limited.url });
      expect(code).toBe(0);
      expect(check(report, 'token_service').status).toBe('ok');
      expect(check(report, 'token_service').finding).toMatch(/accepted the run token \(and, with its audience allow-list, refused the test audience oz:doctor: HTTP 403/);
    } finally {
      await limited.stop('SIGKILL');
    }
  });

  it('fails when the token service refuses the run token', async () => {
    const runToken = await grant();
    // A run token for this service, shown to another one with its own key.
    const other = tempDir();
    const stranger = await serve(scrubbedEnv(other, NET), ['--rate-limit', '0']);
    try {
      const { code, report } = await doctor({ ...scrubbedEnv(tempDir(), NET), OZ_RUN_TOKEN: runToken, OZ_TOKEN_URL: `${stranger.url}/v1/token` });
      expect(code).toBe(10);
      expect(check(report, 'token_service')).toMatchObject({ status: 'fail', finding: expect.stringMatching(/refused the run token: HTTP 401/) });
    } finally {
      await stranger.stop('SIGKILL');
    }
  });
});

describe('oz doctor behind a proxy', () => {
  it('asks for a public issuer through HTTPS_PROXY, and reports it unreachable when the proxy cuts it', async () => {
    const trap = await startProxyTrap();
    try {
      const env = { ...scrubbedEnv(tempDir(), { HTTPS_PROXY: trap.url, HTTP_PROXY: trap.url, NO_PROXY: '127.0.0.1' }), OZ_ISSUER_URL: 'https://oidc.example.com' };
      const started = Date.now();
      const { code, report } = await doctor(env);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(code).toBe(0);
      expect(check(report, 'issuer_url').status).toBe('ok');
      expect(check(report, 'discovery').status).toBe('warn');
      expect(check(report, 'discovery').finding).toMatch(/^cannot fetch the discovery document https:\/\/oidc\.example\.com\/\.well-known\/openid-configuration: /);
      // Through the proxy and nowhere else; undici may ask again after each cut tunnel.
      expect(trap.requests.length).toBeGreaterThan(0);
      for (const r of trap.requests) expect(r).toEqual({ method: 'CONNECT', target: 'oidc.example.com:443', tunnelled: false });
    } finally {
      await trap.close();
    }
  });
});
