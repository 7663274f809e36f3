import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, oz, run } from '../helpers/oz.js';
import { useTokenService, GCP_AUD, SANDBOX_LIES, GRANT_ARGS, GRANTED_CLAIMS, grant, sandbox, tokenRequest, problem, verifyWithPyJwt } from '../helpers/token-service.js';

/** Remote mode: run grants, the claims they bind, and what a sandbox cannot change. */

const ts = useTokenService();

describe('oz issuer grant-run', () => {
  it('prints one run token with its own typ and audience, binding the run until its deadline', async () => {
    const r = await oz(['issuer', 'grant-run', ...GRANT_ARGS], { env: { ...ts.serverEnv, OZ_ISSUER_URL: ts.service.url } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { header, claims } = decode(r.stdout.trim());
    expect(header).toMatchObject({ alg: 'RS256', typ: 'oz-run+jwt' });
    expect(claims).toMatchObject({ iss: ts.service.url, aud: 'oz:token-service', ...GRANTED_CLAIMS });
    expect(typeof claims.jti).toBe('string');
    const now = Date.now() / 1000;
    expect(claims.exp as number).toBeGreaterThan(now + 4 * 3600 - 5);
    expect(claims.exp as number).toBeLessThanOrEqual(now + 4 * 3600 + 1);

    const deadline = new Date(Math.floor(Date.now() / 1000) * 1000 + 3600_000).toISOString().replace('.000Z', 'Z');
    const j = await oz(['issuer', 'grant-run', '--run-id', 'r', '--subject', 's', '--deadline', deadline, '--json'], { env: ts.serverEnv });
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(Object.keys(doc).sort()).toEqual(['claims', 'expires_at', 'run_token']);
    expect(decode(doc.run_token).claims).toEqual(doc.claims);
    expect(doc.expires_at).toBe(new Date(deadline).toISOString());
    // Claims the platform did not give are left out, not invented.
    expect(Object.keys(doc.claims).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'run_id', 'sub']);
  });

  it.each([
    [['--subject', 's'], "oz: required option '--run-id <id>' not specified (see `oz issuer grant-run --help`)\n"],
    [['--run-id', 'r', '--subject', ''], 'oz: invalid --subject "": it is empty\n'],
    [['--run-id', 'r\n2', '--subject', 's'], 'oz: invalid --run-id "r\\n2": it contains control characters\n'],
    [['--run-id', 'r', '--subject', 's', '--teams', ',,'], 'oz: invalid --teams ",,": nothing in it (comma-separated team UIDs)\n'],
    [['--run-id', 'r', '--subject', 's', '--max-duration', '1h', '--deadline', '2099-01-01T00:00:00Z'], "oz: --max-duration and --deadline both set the run's deadline: give one of them\n"],
    [['--run-id', 'r', '--subject', 's', '--deadline', '2020-01-01T00:00:00Z'], /^oz: invalid --deadline "2020-01-01T00:00:00Z": it is in the past \(\d+d\w* ago\)\n$/],
    [['--run-id', 'r', '--subject', 's', '--deadline', 'soon'], 'oz: invalid --deadline "soon": expected an RFC 3339 time such as 2026-01-02T15:04:05Z or Unix seconds\n'],
    [['--run-id', 'r', '--subject', 's', '--max-duration', '0'], 'oz: invalid --max-duration "0": it must be longer than zero\n'],
    [['--run-id', 'r', '--subject', 's', '--max-duration', '25h'], /^oz: the run's deadline \S+ is more than 1d away: a run grant lasts at most that long, the time a rotated key stays published\n$/],
  ])('%j is a usage error', async (args, stderr) => {
    const r = await oz(['issuer', 'grant-run', ...args], { env: ts.serverEnv });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    if (typeof stderr === 'string') expect(r.stderr).toBe(stderr);
    else expect(r.stderr).toMatch(stderr);
  });
});

describe('remote mode: the claims come from the grant', () => {
  it('issue-token (jwt, json, gcp) signs the grant\'s claims whatever the sandbox says, and creates no key', async () => {
    const runToken = await grant();
    const { home, env } = sandbox(runToken, SANDBOX_LIES);

    const jwt = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(jwt).toMatchObject({ code: 0, stderr: '' });
    expect(jwt.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { header, claims } = decode(jwt.stdout.trim());
    expect(header).toMatchObject({ typ: 'JWT', alg: 'RS256' });
    expect(claims).toMatchObject({ iss: ts.service.url, aud: 'sts.amazonaws.com', ...GRANTED_CLAIMS });
    expect(claims.jti).not.toBe(decode(runToken).claims.jti);
    const now = Date.now() / 1000;
    expect(claims.exp as number).toBeGreaterThan(now + 3590);
    expect(claims.exp as number).toBeLessThanOrEqual(now + 3601);

    // A relying party that shares no code with oz accepts it through discovery and the JWKS.
    const rp = await verifyWithPyJwt(jwt.stdout.trim(), 'sts.amazonaws.com');
    expect(rp.out).not.toMatch(/^ERROR/);
    expect(rp.claims).toMatchObject({ sub: 'user-7', run_id: 'run-42' });

    const json = await oz(['federate', 'issue-token', '--audience', 'vault', '--duration', '15m', '--format', 'json'], { env });
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const doc = JSON.parse(json.stdout);
    expect(Object.keys(doc).sort()).toEqual(['claims', 'expires_at', 'token']);
    expect(doc.claims).toEqual(decode(doc.token).claims);
    expect(doc.claims).toMatchObject({ aud: 'vault', ...GRANTED_CLAIMS });
    expect(Date.parse(doc.expires_at) / 1000).toBe(doc.claims.exp);
    expect(doc.claims.exp - Date.now() / 1000).toBeLessThanOrEqual(901);

    const out = join(home, 'gcp-cache.json');
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD, GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: out } });
    expect(gcp).toMatchObject({ code: 0, stderr: '' });
    const resp = JSON.parse(gcp.stdout);
    expect(resp).toMatchObject({ version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(decode(resp.id_token).claims).toMatchObject({ aud: `https:${GCP_AUD}`, ...GRANTED_CLAIMS });
    expect(resp.expiration_time).toBe(decode(resp.id_token).claims.exp);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(resp);

    // No key anywhere on the client: not in OZ_DATA_DIR, not in the default data directory.
    expect(existsSync(env.OZ_DATA_DIR!)).toBe(false);
    expect(readdirSync(home).sort()).toEqual(['gcp-cache.json']);
  });

  it('prepare writes the AWS token file from the token service, with no key on the client', async () => {
    const runToken = await grant();
    const { home, env } = sandbox(runToken, SANDBOX_LIES);
    const dir = join(home, 'prepared');
    const r = await oz(['federate', 'prepare', '--aws-role-arn', 'arn:aws:iam::123456789012:role/agent', '--dir', dir, '--shell', 'json'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const vars = JSON.parse(r.stdout) as Record<string, string>;
    const token = readFileSync(vars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8');
    expect(decode(token).claims).toMatchObject({ iss: ts.service.url, aud: 'sts.amazonaws.com', ...GRANTED_CLAIMS });
    // The session name is the grant's run, not the one the sandbox claims.
    expect(vars.AWS_ROLE_SESSION_NAME).toBe('Oz_Run_run-42');
    expect(existsSync(env.OZ_DATA_DIR!)).toBe(false);
  });

  it('whoami says where tokens come from, shows the grant\'s claims, and names the variables it ignores', async () => {
    const runToken = await grant();
    const exp = decode(runToken).claims.exp as number;
    const { env } = sandbox(runToken, { OZ_SUBJECT: 'admin', OZ_TEAMS: 'platform-admins', OZ_RUN_DEADLINE: '2099-01-01T00:00:00Z' });
    const text = await oz(['federate', 'whoami'], { env });
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toContain(`Token source: token service at ${ts.service.url}/v1/token (OZ_RUN_TOKEN is set; no signing key is used here)\n`);
    expect(text.stdout).toMatch(/^ {2}sub +user-7 +from the run token$/m);
    expect(text.stdout).toMatch(/^ {2}teams +team-a +from the run token$/m);
    expect(text.stdout).toMatch(new RegExp(`^  deadline +${new Date(exp * 1000).toISOString()} +the run token's expiry$`, 'm'));
    expect(text.stdout).toContain('These are the claims the token service will sign; the run token is not verified here.\n');
    expect(text.stdout).toContain("Ignored in this mode: OZ_SUBJECT, OZ_TEAMS, OZ_RUN_DEADLINE (the run token decides the run's claims)\n");
    expect(text.stdout).not.toContain('admin');

    const json = await oz(['federate', 'whoami', '--json'], { env });
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({
      token_source: 'remote',
      token_url: `${ts.service.url}/v1/token`,
      issuer: ts.service.url,
      verified: false,
      deadline: new Date(exp * 1000).toISOString(),
      ignored_variables: ['OZ_SUBJECT', 'OZ_TEAMS', 'OZ_RUN_DEADLINE'],
    });
    expect(doc.claims.sub).toEqual({ value: 'user-7', source: 'run_token' });
    expect(doc.seconds_left).toBeGreaterThan(4 * 3600 - 10);

    const quiet = await oz(['federate', 'whoami'], { env: sandbox(runToken).env });
    expect(quiet.stdout).toContain('The run-context variables (OZ_SUBJECT, OZ_TEAMS, OZ_RUN_DEADLINE, …) are ignored in this mode; none is set.\n');
  });

  it("caps the lifetime at the grant's deadline, not the sandbox's", async () => {
    const runToken = await grant(['--run-id', 'r', '--subject', 's', '--max-duration', '10m']);
    const { env } = sandbox(runToken, { OZ_MAX_RUN_DURATION: '24h', OZ_RUN_DEADLINE: '2099-01-01T00:00:00Z' });
    const r = await oz(['federate', 'issue-token', '--audience', 'a', '--duration', '2h', '--format', 'json'], { env });
    expect(r.code).toBe(0);
    // Not an error, but the person who asked for 2h hears of it.
    expect(r.stderr).toMatch(/^oz: the token is valid for about (9m\d+s|10m), not the 2h asked for: the token service capped it/);
    expect(JSON.parse(r.stdout).claims.exp).toBe(decode(runToken).claims.exp);
  });

  it('keeps serving a grant across `oz issuer rotate`, signing with the new key', async () => {
    const runToken = await grant();
    const { env } = sandbox(runToken);
    const before = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    const rot = await oz(['issuer', 'rotate', '--json'], { env: ts.serverEnv });
    expect(rot.code).toBe(0);
    // The service looks at the key files at most once a second.
    await new Promise((r) => setTimeout(r, 1100));
    const after = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(after).toMatchObject({ code: 0, stderr: '' });
    expect(decode(before.stdout.trim()).header.kid).toBe(JSON.parse(rot.stdout).previous.kid);
    expect(decode(after.stdout.trim()).header.kid).toBe(JSON.parse(rot.stdout).current.kid);
  });
});

describe('remote mode: refusals', () => {
  it('an expired grant is the end of the run (exit 4), and the service refuses it with 401', async () => {
    const runToken = await grant(['--run-id', 'r', '--subject', 's', '--max-duration', '1s']);
    await new Promise((r) => setTimeout(r, 1100 + (decode(runToken).claims.exp as number) * 1000 - Date.now()));
    const { env } = sandbox(runToken);
    const exp = new Date((decode(runToken).claims.exp as number) * 1000).toISOString();
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({ code: 4, stdout: '', stderr: `oz: the run's grant expired at ${exp}: no token can be issued for this run (OZ_RUN_TOKEN)\n` });
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: 4, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ success: false, code: 'run_expired' });

    const a = await tokenRequest(runToken, { audience: 'a' });
    expect(a.status).toBe(401);
    expect(a.headers['www-authenticate']).toBe('Bearer realm="oz", error="invalid_token"');
    expect(problem(a)).toEqual({ type: 'urn:oz:problem:run-expired', title: 'Unauthorized', status: 401, detail: `the run's grant expired at ${exp}: no token can be issued for this run` });
  });

  it('an identity token is refused as a run token', async () => {
    const identity = await oz(['federate', 'issue-token', '--audience', 'oz:token-service'], { env: { ...ts.serverEnv, OZ_ISSUER_URL: ts.service.url } });
    const token = identity.stdout.trim();
    const { env } = sandbox(token);
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `oz: the token service at ${ts.service.url}/v1/token refused the run token: HTTP 401 Unauthorized: the bearer token is not a run token: its typ is "JWT", not "oz-run+jwt" (an identity token cannot be used as a run token; use the token \`oz issuer grant-run\` printed)\n`,
    });
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: 6, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_denied' });
  });

  it('a run token is refused as an identity token, and the service will not issue one for its audience', async () => {
    const runToken = await grant();
    // Signed by a published key, but for an audience no relying party expects.
    const rp = await verifyWithPyJwt(runToken, 'sts.amazonaws.com');
    expect(rp.out).toMatch(/^ERROR InvalidAudienceError/);
    const inspect = await oz(['federate', 'inspect', runToken, '--verify', '--audience', 'sts.amazonaws.com'], { env: ts.serverEnv });
    expect(inspect).toMatchObject({ code: 7, stderr: 'oz: the audience is not the one expected: expected "sts.amazonaws.com", the token has "oz:token-service"\n' });

    const r = await oz(['federate', 'issue-token', '--audience', 'oz:token-service'], { env: sandbox(runToken).env });
    expect(r).toMatchObject({
      code: 6,
      stderr: `oz: the token service at ${ts.service.url}/v1/token refused the request: HTTP 400 Bad Request: "audience" "oz:token-service" is reserved for run tokens\n`,
    });
  });

  it('a malformed OZ_RUN_TOKEN or OZ_TOKEN_TIMEOUT is a configuration error, before any request', async () => {
    const bad = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox('not-a-token').env });
    expect(bad).toMatchObject({ code: 3, stderr: 'oz: OZ_RUN_TOKEN is not a run token: expected 3 dot-separated parts, found 1 (the platform sets it to the output of `oz issuer grant-run`)\n' });
    const timeout = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(await grant(), { OZ_TOKEN_TIMEOUT: '5m' }).env });
    expect(timeout).toMatchObject({ code: 3, stderr: 'oz: invalid OZ_TOKEN_TIMEOUT "5m": it is longer than 2m\n' });
  });
});
