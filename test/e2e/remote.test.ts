import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { decode, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';

/**
 * The remote issuer end to end: `oz issuer grant-run` mints a run token, `oz issuer serve`
 * trades it for identity tokens, and the built CLI in a sandbox-like environment asks for
 * them. Misbehaving services (503s, 429s, a dead port, a service that never answers, a
 * forward proxy) are small servers in this process, all on 127.0.0.1.
 */

const PYJWT = join(__dirname, '../helpers/pyjwt_verify.py');
const GCP_AUD = '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1';

/** What the sandbox's environment claims; in remote mode none of it may reach a token. */
const SANDBOX_LIES = {
  OZ_RUN_ID: 'forged-run',
  OZ_SUBJECT: 'admin',
  OZ_EMAIL: 'root@example.com',
  OZ_TEAMS: 'platform-admins',
  OZ_ENVIRONMENT_ID: 'prod',
  OZ_AGENT_NAME: 'evil',
  OZ_SKILL_SPEC: 'evil/repo:x',
  OZ_HOST: 'elsewhere',
  OZ_RUN_DEADLINE: '2099-01-01T00:00:00Z',
  OZ_MAX_RUN_DURATION: '24h',
};

const GRANT_ARGS = [
  '--run-id', 'run-42', '--subject', 'user-7', '--email', 'dev@example.com', '--teams', 'team-a',
  '--environment', 'env-9', '--agent-name', 'deployer', '--skill-spec', 'org/repo:.warp/skills/deployer/SKILL.md', '--host', 'warp',
];
const GRANTED_CLAIMS = {
  sub: 'user-7', email: 'dev@example.com', teams: ['team-a'], run_id: 'run-42', environment: 'env-9',
  agent_name: 'deployer', skill_spec: 'org/repo:.warp/skills/deployer/SKILL.md', host: 'warp',
};

let serverHome: string;
let serverEnv: Record<string, string>;
let service: Served;

beforeAll(async () => {
  serverHome = tempDir();
  serverEnv = scrubbedEnv(serverHome);
  service = await serve(serverEnv, ['--rate-limit', '0', '--request-timeout', '1s']);
});
afterAll(async () => {
  await service?.stop('SIGKILL');
});

/** `oz issuer grant-run` where the key lives, for the service's issuer. */
async function grant(args: string[] = GRANT_ARGS, issuerUrl = service.url): Promise<string> {
  const r = await oz(['issuer', 'grant-run', ...args], { env: { ...serverEnv, OZ_ISSUER_URL: issuerUrl } });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return r.stdout.trim();
}

/** A sandbox: its own empty home, the run token, where the service is, and whatever else. */
function sandbox(runToken: string, extra: Record<string, string> = {}) {
  const home = tempDir('oz-sandbox-');
  return { home, env: scrubbedEnv(home, { OZ_RUN_TOKEN: runToken, OZ_ISSUER_URL: service.url, ...extra }) };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with full control over headers and body; no keep-alive, no retries. */
function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'POST', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    // The service may answer and close before an oversized body is all sent; the answer counts.
    req.on('error', (e) => reject(e));
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

function tokenRequest(bearer: string | undefined, body: unknown, headers: Record<string, string> = {}) {
  return rawRequest(`${service.url}/v1/token`, {
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function problem(a: Answer): Record<string, unknown> {
  expect(a.headers['content-type']).toBe('application/problem+json');
  return JSON.parse(a.body) as Record<string, unknown>;
}

async function verifyWithPyJwt(token: string, audience: string) {
  const r = await run('/usr/bin/python3', [PYJWT, audience], { input: token, env: { PATH: process.env.PATH ?? '' } });
  return { ok: r.code === 0, out: r.stdout, claims: r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
}

describe('oz issuer grant-run', () => {
  it('prints one run token with its own typ and audience, binding the run until its deadline', async () => {
    const r = await oz(['issuer', 'grant-run', ...GRANT_ARGS], { env: { ...serverEnv, OZ_ISSUER_URL: service.url } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { header, claims } = decode(r.stdout.trim());
    expect(header).toMatchObject({ alg: 'RS256', typ: 'oz-run+jwt' });
    expect(claims).toMatchObject({ iss: service.url, aud: 'oz:token-service', ...GRANTED_CLAIMS });
    expect(typeof claims.jti).toBe('string');
    const now = Date.now() / 1000;
    expect(claims.exp as number).toBeGreaterThan(now + 4 * 3600 - 5);
    expect(claims.exp as number).toBeLessThanOrEqual(now + 4 * 3600 + 1);

    const deadline = new Date(Math.floor(Date.now() / 1000) * 1000 + 3600_000).toISOString().replace('.000Z', 'Z');
    const j = await oz(['issuer', 'grant-run', '--run-id', 'r', '--subject', 's', '--deadline', deadline, '--json'], { env: serverEnv });
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
    const r = await oz(['issuer', 'grant-run', ...args], { env: serverEnv });
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
    expect(claims).toMatchObject({ iss: service.url, aud: 'sts.amazonaws.com', ...GRANTED_CLAIMS });
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
    expect(decode(token).claims).toMatchObject({ iss: service.url, aud: 'sts.amazonaws.com', ...GRANTED_CLAIMS });
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
    expect(text.stdout).toContain(`Token source: token service at ${service.url}/v1/token (OZ_RUN_TOKEN is set; no signing key is used here)\n`);
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
      token_url: `${service.url}/v1/token`,
      issuer: service.url,
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
    const rot = await oz(['issuer', 'rotate', '--json'], { env: serverEnv });
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
    const identity = await oz(['federate', 'issue-token', '--audience', 'oz:token-service'], { env: { ...serverEnv, OZ_ISSUER_URL: service.url } });
    const token = identity.stdout.trim();
    const { env } = sandbox(token);
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `oz: the token service at ${service.url}/v1/token refused the run token: HTTP 401 Unauthorized: the bearer token is not a run token: its typ is "JWT", not "oz-run+jwt" (an identity token cannot be used as a run token; use the token \`oz issuer grant-run\` printed)\n`,
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
    const inspect = await oz(['federate', 'inspect', runToken, '--verify', '--audience', 'sts.amazonaws.com'], { env: serverEnv });
    expect(inspect).toMatchObject({ code: 7, stderr: 'oz: the audience is not the one expected: expected "sts.amazonaws.com", the token has "oz:token-service"\n' });

    const r = await oz(['federate', 'issue-token', '--audience', 'oz:token-service'], { env: sandbox(runToken).env });
    expect(r).toMatchObject({
      code: 6,
      stderr: `oz: the token service at ${service.url}/v1/token refused the request: HTTP 400 Bad Request: "audience" "oz:token-service" is reserved for run tokens\n`,
    });
  });

  it('a malformed OZ_RUN_TOKEN or OZ_TOKEN_TIMEOUT is a configuration error, before any request', async () => {
    const bad = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox('not-a-token').env });
    expect(bad).toMatchObject({ code: 3, stderr: 'oz: OZ_RUN_TOKEN is not a run token: expected 3 dot-separated parts, found 1 (the platform sets it to the output of `oz issuer grant-run`)\n' });
    const timeout = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(await grant(), { OZ_TOKEN_TIMEOUT: '5m' }).env });
    expect(timeout).toMatchObject({ code: 3, stderr: 'oz: invalid OZ_TOKEN_TIMEOUT "5m": it is longer than 2m\n' });
  });
});

describe('oz issuer serve: POST /v1/token refuses bad requests and keeps serving', () => {
  it.each([
    ['garbage', 'this is not json', 400, 'the request body is not valid JSON'],
    ['an empty body', '', 400, 'the request body is empty: send {"audience": "...", "duration_seconds": N}'],
    ['an array', '[]', 400, 'the request body must be a JSON object'],
    ['no audience', '{"duration_seconds": 60}', 400, 'missing "audience": the "aud" the relying party expects'],
    ['an empty audience', '{"audience": ""}', 400, 'invalid "audience" "": it is empty'],
    ['a control character', '{"audience": "a\\u001bb"}', 400, 'invalid "audience" "a\\u001bb": it contains control characters'],
    ['a long audience', JSON.stringify({ audience: 'a'.repeat(1025) }), 400, `invalid "audience" "${'a'.repeat(80)}…": it is 1025 characters long, more than 1024`],
    ['a fractional duration', '{"audience": "a", "duration_seconds": 1.5}', 400, '"duration_seconds" must be a whole number of seconds from 1 to 31622400'],
    ['a string duration', '{"audience": "a", "duration_seconds": "3600"}', 400, '"duration_seconds" must be a whole number of seconds from 1 to 31622400'],
  ])('%s: 400 problem+json', async (_n, body, status, detail) => {
    const a = await tokenRequest(await grant(), body);
    expect(a.status).toBe(status);
    expect(problem(a)).toEqual({ type: 'about:blank', title: 'Bad Request', status, detail });
  });

  it('wrong method, wrong content type, no or bad bearer, oversized bodies: each its status, then a good request works', async () => {
    const runToken = await grant();
    const url = `${service.url}/v1/token`;

    // A path that names a property of every JavaScript object is still just an unknown path.
    expect((await rawRequest(`${service.url}/constructor`, { method: 'GET' })).status).toBe(404);

    const get = await rawRequest(url, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(problem(get)).toMatchObject({ title: 'Method Not Allowed', status: 405 });

    for (const headers of [{ 'content-type': 'text/plain' }, {}] as Record<string, string>[]) {
      const a = await rawRequest(url, { headers: { ...headers, authorization: `Bearer ${runToken}` }, body: '{"audience":"a"}' });
      expect(a.status).toBe(415);
      expect(problem(a)).toMatchObject({ title: 'Unsupported Media Type', detail: 'the request body must be application/json' });
    }
    // A charset parameter is still JSON.
    const charset = await tokenRequest(runToken, { audience: 'a' }, { 'content-type': 'application/json; charset=utf-8' });
    expect(charset.status).toBe(200);

    const none = await tokenRequest(undefined, { audience: 'a' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="oz"');
    expect(problem(none).detail).toBe('send the run token (OZ_RUN_TOKEN) as "Authorization: Bearer <run token>"');
    const basic = await tokenRequest(undefined, { audience: 'a' }, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.status).toBe(401);
    const garbage = await tokenRequest('garbage', { audience: 'a' });
    expect(garbage.status).toBe(401);
    expect(garbage.headers['www-authenticate']).toBe('Bearer realm="oz", error="invalid_token"');
    expect(problem(garbage).detail).toBe('the bearer token is not a JWT: expected 3 dot-separated parts, found 1');
    const [h, p, s] = runToken.split('.');
    const forged = JSON.parse(Buffer.from(p!, 'base64url').toString());
    forged.sub = 'admin';
    const tampered = await tokenRequest(`${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`, { audience: 'a' });
    expect(tampered.status).toBe(401);
    expect(problem(tampered).detail).toBe("the run token's signature does not verify");

    const declared = await rawRequest(url, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${runToken}` },
      body: Buffer.alloc(70 * 1024, 0x20),
    });
    expect(declared.status).toBe(413);
    expect(problem(declared)).toMatchObject({ title: 'Content Too Large', detail: 'the request body is larger than 65536 bytes' });
    // No Content-Length: the stream itself goes over the limit.
    const streamed = await rawRequest(url, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${runToken}`, 'transfer-encoding': 'chunked' },
      chunks: Array.from({ length: 10 }, () => Buffer.alloc(10 * 1024, 0x20)),
    });
    expect(streamed.status).toBe(413);

    const ok = await tokenRequest(runToken, { audience: 'sts.amazonaws.com', duration_seconds: 600 });
    expect(ok.status).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    const doc = JSON.parse(ok.body);
    expect(Object.keys(doc).sort()).toEqual(['expires_at', 'token']);
    expect(Date.parse(doc.expires_at) / 1000).toBe(decode(doc.token).claims.exp);
  });

  it('cuts off a request that is sent too slowly, refuses one that is not HTTP, and serves the next one', async () => {
    const { port } = new URL(service.url);
    const started = Date.now();
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => (received += d));
    socket.write('POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');
    await new Promise((r) => socket.once('close', r));
    // --request-timeout 1s, enforced by a check every second.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);

    // Bytes that are not HTTP at all.
    const garbage = connect(Number(port), '127.0.0.1');
    let answer = '';
    garbage.setEncoding('utf8').on('data', (d: string) => (answer += d));
    garbage.write('\u0000\u0001 hello\r\n\r\n');
    await new Promise((r) => garbage.once('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);

    const ok = await tokenRequest(await grant(), { audience: 'a' });
    expect(ok.status).toBe(200);
  });

  it('never writes a token or an Authorization header to its access log', async () => {
    const runToken = await grant();
    const linesBefore = service.stderr().split('\n').length;
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: sandbox(runToken).env });
    const issued = r.stdout.trim();
    // A token in the path or the query of a request is not logged either.
    await rawRequest(`${service.url}/v1/token/${runToken}?token=${runToken}`, { method: 'GET' });
    await tokenRequest(runToken, 'garbage');
    // Log lines are written once per turn of the server's event loop, then cross a pipe.
    const lines = () => service.stderr().split('\n').length;
    for (let i = 0; i < 50 && lines() < linesBefore + 3; i++) await new Promise((r) => setTimeout(r, 20));
    const log = service.stderr();
    expect(log).toMatch(/^127\.0\.0\.1 POST \/v1\/token 200 [\d.]+ms run_id="run-42" aud="sts.amazonaws.com"$/m);
    expect(log).toMatch(/^127\.0\.0\.1 GET \/v1\/token\/<redacted> 404 [\d.]+ms$/m);
    expect(log).toMatch(/^127\.0\.0\.1 POST \/v1\/token 400 [\d.]+ms run_id="run-42"$/m);
    for (const secret of [runToken, issued, runToken.split('.')[2]!, issued.split('.')[2]!, 'Bearer', 'authorization']) {
      expect(log).not.toContain(secret);
    }
  });
});

describe('oz issuer serve: rate limit and audience allow-list', () => {
  let limited: Served;
  beforeAll(async () => {
    limited = await serve({ ...serverEnv, OZ_ALLOWED_AUDIENCES: 'sts.amazonaws.com, vault' }, ['--rate-limit', '1']);
  });
  afterAll(async () => {
    await limited?.stop('SIGKILL');
  });

  it('answers 429 with Retry-After once a grant exceeds its rate, without slowing other grants', async () => {
    const [one, two] = [await grant(undefined, limited.url), await grant(undefined, limited.url)];
    const ask = (t: string) =>
      rawRequest(`${limited.url}/v1/token`, { headers: { 'content-type': 'application/json', authorization: `Bearer ${t}` }, body: '{"audience":"vault"}' });
    // --rate-limit 1: a burst of 3, then one a second.
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await ask(one)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limitedAnswer = await ask(one);
    expect(limitedAnswer.headers['retry-after']).toBe('1');
    expect(problem(limitedAnswer)).toMatchObject({ status: 429, title: 'Too Many Requests', detail: 'this run asks for tokens faster than 1 a second' });
    expect((await ask(two)).status).toBe(200);
  });

  it.each([
    [['--rate-limit', 'fast'], {}, 2, 'oz: invalid --rate-limit "fast": expected requests per second per run, such as 10 (0 turns the limit off)\n'],
    [[], { OZ_TOKEN_RATE_LIMIT: '-1' }, 3, 'oz: invalid OZ_TOKEN_RATE_LIMIT "-1": expected requests per second per run, such as 10 (0 turns the limit off)\n'],
    [['--request-timeout', 'never'], {}, 2, 'oz: invalid --request-timeout "never": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds\n'],
    [[], { OZ_ALLOWED_AUDIENCES: 'ok,bad\u0007' }, 3, 'oz: invalid OZ_ALLOWED_AUDIENCES "ok,bad\\u0007": audience "bad\\u0007": it contains control characters\n'],
    [[], { OZ_ALLOWED_AUDIENCES: ',' }, 3, 'oz: invalid OZ_ALLOWED_AUDIENCES ",": it names no audience (comma-separated; leave it unset to allow any)\n'],
    [['--allow-audience', ''], {}, 2, 'oz: invalid --allow-audience "": audience "": it is empty\n'],
    [['--host', ''], {}, 2, 'oz: invalid --host "": it is empty; give an address such as 127.0.0.1, or 0.0.0.0 for every interface\n'],
  ])('refuses to start with %j %j', async (args, extra, code, stderr) => {
    const r = await oz(['issuer', 'serve', '--port', '0', ...args], { env: { ...serverEnv, ...extra } });
    expect(r).toMatchObject({ code, stdout: '', stderr });
  });

  it('issues tokens only for the audiences in OZ_ALLOWED_AUDIENCES', async () => {
    const runToken = await grant(undefined, limited.url);
    const { env } = sandbox(runToken, { OZ_ISSUER_URL: limited.url });
    const ok = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    const refused = await oz(['federate', 'issue-token', '--audience', 'https://elsewhere.example.com'], { env });
    expect(refused).toMatchObject({
      code: 6,
      stdout: '',
      stderr: `oz: the token service at ${limited.url}/v1/token refused the request: HTTP 403 Forbidden: audience "https://elsewhere.example.com" is not in this token service's allow-list\n`,
    });
  });
});

// ---------------------------------------------------------------------------------------
// A client that survives a bad network: scripted services, a dead port, a hang, a proxy.

interface Recorded {
  /** The client's port: the same for requests on one kept-alive connection. */
  port: number | undefined;
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

type Script = (n: number, body: Record<string, unknown>) => { status: number; headers?: Record<string, string>; body?: unknown };

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function listen(server: Server | ReturnType<typeof createNetServer>): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** A token service that answers from a script, recording every request. */
async function scripted(script: Script): Promise<{ url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      requests.push({ port: req.socket.remotePort, method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      const answer = script(requests.length, JSON.parse(body || '{}'));
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status, { 'content-type': answer.status === 200 ? 'application/json' : 'application/problem+json', ...answer.headers });
      res.end(text);
    });
  });
  const port = await listen(server);
  servers.push({ close: () => server.close() });
  return { url: `http://127.0.0.1:${port}/v1/token`, requests };
}

/** What a token service answers: a JWT-shaped token for the audience asked for. */
function tokenAnswer(body: Record<string, unknown>) {
  const exp = Math.floor(Date.now() / 1000) + 600;
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return { status: 200, body: { token: `${part({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${part({ sub: 'user-7', aud: body.audience, exp })}.c2ln`, expires_at: new Date(exp * 1000).toISOString() } };
}

const problemBody = (status: number, title: string, detail: string, type = 'about:blank') => ({ type, title, status, detail });

/** A sandbox pointed at `tokenUrl`, with a real (unexpired) run token. */
async function clientEnvDirect(tokenUrl: string, extra: Record<string, string> = {}) {
  return sandbox(await grant(), { OZ_TOKEN_URL: tokenUrl, ...extra }).env;
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const r = await f();
  return [r, Date.now() - t];
}

/** A forward proxy on loopback that records what it is asked and refuses anything off loopback. */
async function forwardProxy(): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? '/');
    if (target.hostname !== '127.0.0.1') {
      res.writeHead(403).end();
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: target.port, method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  proxy.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect(Number(port), '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const port = await listen(proxy);
  servers.push({ close: () => proxy.close() });
  return { url: `http://127.0.0.1:${port}`, seen };
}


/**
 * Everything above the transport runs over both: node:http when no proxy applies, undici when
 * one does. `via` adds what routes a sandbox one way or the other.
 */
const ROUTES: [string, boolean, () => Promise<Record<string, string>>][] = [
  ['direct (node:http)', true, async () => ({})],
  ['through a proxy (undici)', false, async () => ({ HTTP_PROXY: (await forwardProxy()).url })],
];

describe.each(ROUTES)('the client retries what may pass, and only that: %s', (_route, direct, via) => {
  const clientEnv = async (tokenUrl: string, extra: Record<string, string> = {}) => clientEnvDirect(tokenUrl, { ...(await via()), ...extra });

  it('two 503s, then success: three requests, one token', async () => {
    const svc = await scripted((n, body) => (n <= 2 ? { status: 503, body: problemBody(503, 'Service Unavailable', 'warming up') } : tokenAnswer(body)));
    const env = await clientEnv(svc.url);
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(decode(r.stdout.trim()).claims.aud).toBe('sts.amazonaws.com');
    expect(svc.requests).toHaveLength(3);
    for (const req of svc.requests) {
      expect(req).toEqual({
        // The proxy here opens a connection per request; oz's own to it is kept alive.
        port: direct ? svc.requests[0]!.port : req.port,
        method: 'POST',
        url: '/v1/token',
        authorization: `Bearer ${env.OZ_RUN_TOKEN}`,
        body: '{"audience":"sts.amazonaws.com","duration_seconds":3600}',
      });
    }
    // All three on one kept-alive connection.
  });

  it('503s until the attempts run out: remote_unavailable (exit 5) with what the service said', async () => {
    const svc = await scripted(() => ({ status: 503, body: problemBody(503, 'Service Unavailable', 'down for maintenance') }));
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url) });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(new RegExp(`^oz: the token service at ${svc.url} failed: HTTP 503 Service Unavailable: down for maintenance \\(5 attempts in \\d+\\.\\ds\\)\\n$`));
    expect(svc.requests).toHaveLength(5);
  });

  it('429 with Retry-After: waits that long, then succeeds', async () => {
    const svc = await scripted((n, body) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: problemBody(429, 'Too Many Requests', 'slow down') } : tokenAnswer(body)));
    const env = await clientEnv(svc.url);
    const [answer, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(answer).toMatchObject({ code: 0, stderr: '' });
    expect(svc.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
  });

  it('a Retry-After past the bound fails at once instead of waiting it out', async () => {
    const svc = await scripted(() => ({ status: 429, headers: { 'retry-after': '60' }, body: problemBody(429, 'Too Many Requests', 'slow down') }));
    const [r, elapsed] = await timed(async () => oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url, { OZ_TOKEN_TIMEOUT: '3s' }) }));
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      new RegExp(`^oz: the token service at ${svc.url} is rate limiting this run: HTTP 429 Too Many Requests: slow down \\(1 attempt in \\d+\\.\\ds; it asked to retry after 60s, past the 3s bound \\(OZ_TOKEN_TIMEOUT\\)\\)\\n$`),
    );
    expect(svc.requests).toHaveLength(1);
    expect(elapsed).toBeLessThan(2500);
  });

  it.each([
    [400, 'Bad Request', 'remote_denied', 6, 'refused the request'],
    [403, 'Forbidden', 'remote_denied', 6, 'refused the request'],
    [401, 'Unauthorized', 'remote_denied', 6, 'refused the run token'],
    [404, 'Not Found', 'remote_denied', 6, 'refused the request'],
  ])('%i is not retried: %s → %s (exit %i)', async (status, title, code, exit, verb) => {
    const svc = await scripted(() => ({ status, body: problemBody(status, title, 'nope') }));
    const env = await clientEnv(svc.url);
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({ code: exit, stdout: '', stderr: `oz: the token service at ${svc.url} ${verb}: HTTP ${status} ${title}: nope\n` });
    expect(svc.requests).toHaveLength(1);
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: exit, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toEqual({ version: 1, success: false, code, message: `the token service at ${svc.url} ${verb}: HTTP ${status} ${title}: nope` });
  });

  it("the service's word that the run is over is run_expired (exit 4)", async () => {
    const svc = await scripted(() => ({ status: 401, body: problemBody(401, 'Unauthorized', 'the grant expired', 'urn:oz:problem:run-expired') }));
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: await clientEnv(svc.url) });
    expect(r).toMatchObject({ code: 4, stderr: `oz: the token service at ${svc.url} says the run is over: HTTP 401 Unauthorized: the grant expired\n` });
  });
});

describe.each(ROUTES)('the client answers in time whatever the network does: %s', (_route, direct, via) => {
  const clientEnv = async (tokenUrl: string, extra: Record<string, string> = {}) => clientEnvDirect(tokenUrl, { ...(await via()), ...extra });

  it('a dead port: remote_unavailable after a few quick retries, as text and as gcp JSON', async () => {
    const probe = createNetServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}/v1/token`;
    const env = await clientEnv(url);
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    // Through a proxy, it is the proxy that cannot connect, and says so with a 502.
    const why = direct ? `cannot reach the token service at ${url}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}` : `the token service at ${url} failed: HTTP 502 Bad Gateway`;
    expect(r.stderr).toMatch(new RegExp(`^oz: ${why} \\(5 attempts in \\d+\\.\\ds\\)\\n$`));
    expect(elapsed).toBeLessThan(10_000);
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD } });
    expect(gcp).toMatchObject({ code: 5, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
  });

  /** A service that accepts connections and never answers. */
  async function blackHole(): Promise<string> {
    const sockets = new Set<Socket>();
    const server = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    const port = await listen(server);
    servers.push({
      close: () => {
        for (const s of sockets) s.destroy();
        server.close();
      },
    });
    return `http://127.0.0.1:${port}/v1/token`;
  }

  it('a TLS handshake that never completes: the bound cuts it (OZ_TOKEN_TIMEOUT=4s: oz is out in about 4 s)', async () => {
    const url = (await blackHole()).replace('http:', 'https:');
    const env = await clientEnv(url, { OZ_TOKEN_TIMEOUT: '4s' });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--audience', 'a'], { env }));
    expect(r.code).toBe(5);
    // Inside oz the bound is kept to within a few hundred ms…
    expect(r.stderr).toMatch(new RegExp(`^oz: the token service at ${url} did not answer within 4s \\(OZ_TOKEN_TIMEOUT; [12] attempts in 4\\.[0-3]s(, last: no connection within 3s)?\\)\\n$`));
    expect(elapsed).toBeGreaterThanOrEqual(3900);
    // …and the process exits right after: nothing left connecting keeps it alive. Through a
    // proxy oz also loads undici, a few hundred ms more on a loaded machine.
    expect(elapsed).toBeLessThan(direct ? 4500 : 5000);
  });

  it('a service that never answers: --format gcp still answers success:false within OZ_TOKEN_TIMEOUT, stderr empty', async () => {
    const url = await blackHole();
    const env = await clientEnv(url, { OZ_TOKEN_TIMEOUT: '2s', GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--format', 'gcp'], { env }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(5);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
    expect(doc.message).toMatch(new RegExp(`^the token service at ${url} did not answer within 2s \\(OZ_TOKEN_TIMEOUT; 1 attempt in 2\\.\\ds(, last: .*)?\\)$`));
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(5000);
  });

  it('a service that never answers, with the default bound: well inside Google\'s 30 s executable timeout', async () => {
    const url = await blackHole();
    const env = await clientEnv(url, { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: GCP_AUD });
    const [r, elapsed] = await timed(() => oz(['federate', 'issue-token', '--format', 'gcp'], { env, timeoutMs: 40_000 }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, success: false, code: 'remote_unavailable' });
    expect(JSON.parse(r.stdout).message).toMatch(/did not answer within 15s \(OZ_TOKEN_TIMEOUT; [23] attempts in 15\.\ds, last: no answer within 6s\)$/);
    expect(elapsed).toBeGreaterThanOrEqual(14_500);
    expect(elapsed).toBeLessThan(25_000);
  });
});

describe('the client goes through a forward proxy', () => {
  it('HTTP_PROXY carries the request; NO_PROXY bypasses it', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const target = `${service.url}/v1/token`;
    const viaProxy = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTP_PROXY: proxy.url }).env });
    expect(viaProxy).toMatchObject({ code: 0, stderr: '' });
    expect(decode(viaProxy.stdout.trim()).claims.sub).toBe('user-7');
    expect(proxy.seen).toEqual([`POST ${target}`]);

    const lower = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { http_proxy: proxy.url }).env });
    expect(lower.code).toBe(0);
    expect(proxy.seen).toHaveLength(2);

    const bypass = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' }).env });
    expect(bypass).toMatchObject({ code: 0, stderr: '' });
    expect(proxy.seen).toHaveLength(2);
  });

  it('takes a proxy as curl does: no scheme means http://, a path is ignored', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const hostPort = proxy.url.replace('http://', '');
    for (const value of [hostPort, `${proxy.url}/some/path`]) {
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: sandbox(runToken, { HTTPS_PROXY: 'unused', HTTP_PROXY: value }).env });
      expect(r).toMatchObject({ code: 0, stderr: '' });
    }
    expect(proxy.seen).toEqual([`POST ${service.url}/v1/token`, `POST ${service.url}/v1/token`]);
  });

  it.each([
    ['garbage', 'not a proxy', 'expected a proxy such as http://proxy.example.com:3128'],
    ['an unsupported scheme', 'socks5://127.0.0.1:1080', 'oz speaks to http:// and https:// proxies only'],
  ])('a proxy value that is %s is a configuration error (exit 3) naming the variable, before any request', async (_n, value, why) => {
    const { env } = sandbox(await grant(), { HTTP_PROXY: value });
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
    expect(r).toMatchObject({ code: 3, stdout: "", stderr: `oz: invalid HTTP_PROXY ${JSON.stringify(value)}: ${why}\n` });
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', GCP_AUD], { env });
    expect(gcp).toMatchObject({ code: 3, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toEqual({ version: 1, success: false, code: 'config', message: `invalid HTTP_PROXY ${JSON.stringify(value)}: ${why}` });
  });

  it('inspect --verify fetches discovery and the JWKS through the proxy too', async () => {
    const proxy = await forwardProxy();
    const runToken = await grant();
    const { env } = sandbox(runToken);
    const token = (await oz(['federate', 'issue-token', '--audience', 'a'], { env })).stdout.trim();
    const r = await oz(['federate', 'inspect', token, '--verify', '--json'], { env: { ...env, HTTP_PROXY: proxy.url } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout).verification).toMatchObject({ verified: true });
    expect(proxy.seen).toEqual([`GET ${service.url}/.well-known/openid-configuration`, `GET ${service.url}/.well-known/jwks.json`]);
  });
});

describe('start-up budget', () => {
  /** Which HTTP clients a run of oz loaded: node:http (a built-in) and the bundled undici (a file). */
  async function clientsLoaded(args: string[], env: Record<string, string>): Promise<{ http: boolean; undici: boolean }> {
    const dir = tempDir('oz-preload-');
    const log = join(dir, 'loaded.json');
    const preload = join(dir, 'check.cjs');
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(log)}, JSON.stringify({
        http: process.moduleLoadList.includes('NativeModule http'),
        undici: Object.keys(require.cache).some((f) => f.includes('undici')),
      })));\n`,
    );
    const r = await oz(args, { env: { ...env, NODE_OPTIONS: `--require ${preload}` } });
    expect(r.code).toBe(0);
    return JSON.parse(readFileSync(log, 'utf8')) as { http: boolean; undici: boolean };
  }

  it('the embedded path loads no HTTP client; the remote path node:http, and undici only when a proxy applies', async () => {
    const issue = ['federate', 'issue-token', '--audience', 'a'];
    expect(await clientsLoaded(issue, scrubbedEnv(tempDir()))).toEqual({ http: false, undici: false });
    expect(await clientsLoaded(['federate', 'whoami'], sandbox(await grant()).env)).toEqual({ http: false, undici: false });
    expect(await clientsLoaded(issue, sandbox(await grant()).env)).toEqual({ http: true, undici: false });
    const proxy = await forwardProxy();
    expect(await clientsLoaded(issue, sandbox(await grant(), { HTTP_PROXY: proxy.url }).env)).toEqual({ http: true, undici: true });
    expect(proxy.seen).toHaveLength(1);
  });
});
