// Fresh for the whole run: `prepare --refresh`'s background refresher, the file-sourced GCP
// config and `oz federate exec`, with real lifetimes kept short (10 s tokens, replaced at 8 s;
// 20 s for the tight read loop, so that a busy machine's scheduling delay stays inside the 20 %
// margin) so that a refresh happens within each test, on the real clock. The tests run concurrently: the whole file takes
// about as long as its slowest test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { decode, oz, OZ_BIN, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';
import { startAwsSts, startGcpSts, type AwsStsStandIn, type GcpStsStandIn } from '../helpers/standins.js';
import { gcloudPrintAccessToken, googleAuthNodeAccessToken, resolveAwsJs, resolveBoto3 } from '../helpers/clients.js';

const ROLE = 'arn:aws:iam::123456789012:role/oz-agent';
const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';
// With a project ID, so that google-auth-library need not look one up from the number.
const GCP_FLAGS = ['--gcp-project-number', '123456789012', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider', '--gcp-project-id', 'my-project'];

let home: string;
let baseEnv: Record<string, string>;
let issuer: Served;
let aws: AwsStsStandIn;
let gcp: GcpStsStandIn;
let keys: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  home = tempDir('oz-refresh-');
  baseEnv = scrubbedEnv(home, { OZ_RUN_ID: 'run-r', OZ_SUBJECT: 'user-9', OZ_TEAMS: 'team-a' });
  issuer = await serve(baseEnv);
  baseEnv.OZ_ISSUER_URL = issuer.url;
  const jwks = await oz(['issuer', 'jwks'], { env: baseEnv });
  keys = createLocalJWKSet(JSON.parse(jwks.stdout) as JSONWebKeySet);
  aws = await startAwsSts({ trustedIssuers: [issuer.url] });
  gcp = await startGcpSts({ trustedIssuer: issuer.url, audience: PROVIDER });
}, 60_000);

afterAll(async () => {
  // A test that failed half-way may have left a refresher behind: stop every one serving a
  // directory of this file's, then remove them all.
  for (const pid of refreshers(home)) process.kill(pid, 'SIGTERM');
  await Promise.all([aws?.close(), gcp?.close(), issuer?.stop()]);
  rmSync(home, { recursive: true, force: true });
});

/** `prepare --shell json` in a directory of the test's own; the exported variables. */
async function prepare(dir: string, args: string[], extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const r = await oz(['federate', 'prepare', '--dir', dir, '--shell', 'json', ...args], { env: { ...baseEnv, ...extra } });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

/** Pids of the processes whose command line is `… oz federate refresh --dir DIR` (what ps shows), DIR in `under` or `under` itself. */
function refreshers(under: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const dir = args.at(-1) ?? '';
      if (args.includes('refresh') && args.at(-2) === '--dir' && (dir === under || dir.startsWith(`${under}/`))) pids.push(Number(p));
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * Read the token files as fast as possible for `ms`, and check every read: a whole JWT (never
 * empty, never partial), unexpired at the moment it was read, and signed by the issuer's key
 * (each distinct token is verified once; every read is one of the verified ones).
 */
async function hammer(files: string[], ms: number): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>(files.map((f) => [f, []]));
  const verified = new Set<string>();
  const end = Date.now() + ms;
  let reads = 0;
  while (Date.now() < end) {
    for (const f of files) {
      const token = readFileSync(f, 'utf8');
      const now = Date.now() / 1000;
      reads++;
      expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      if (!verified.has(token)) {
        await jwtVerify(token, keys, { issuer: issuer.url });
        verified.add(token);
        seen.get(f)!.push(token);
      }
      expect(decode(token).claims.exp as number).toBeGreaterThan(now);
    }
    // Yield now and then so that the verifier's promises and the test runner keep moving.
    if (reads % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  expect(reads).toBeGreaterThan(1000);
  return seen;
}

describe.concurrent('prepare --refresh', () => {
  it('keeps every token file fresh: each read across a refresh is whole, unexpired and verifies; one refresher per directory; cleanup stops it', async () => {
    const dir = join(home, 'loop');
    const started = Date.now();
    const vars = await prepare(dir, ['--refresh', '--duration', '20s', '--aws-role-arn', ROLE, ...GCP_FLAGS, '--gcp-credential-source', 'file']);
    // Returned at once: the helper waits for stdout and stderr to close, which a refresher
    // holding them would delay until it stopped (20 s and more).
    expect(Date.now() - started).toBeLessThan(15_000);
    const files = [vars.AWS_WEB_IDENTITY_TOKEN_FILE!, join(dir, 'gcp-subject-token')];
    await until('the refresher', () => refreshers(dir).length === 1 && existsSync(join(dir, 'oz-refresher.pid')), 10_000);
    const [pid] = refreshers(dir);
    expect(readFileSync(join(dir, 'oz-refresher.pid'), 'utf8').trim()).toBe(String(pid));
    // It holds no terminal: a session of its own.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    expect(Number(stat[3])).toBe(pid); // session ID
    expect(Number(stat[4])).toBe(0); // controlling terminal: none

    // The hang-up of the shell that started it does not end it.
    process.kill(pid!, 'SIGHUP');

    // A second prepare --refresh finds it and starts nothing.
    await prepare(dir, ['--refresh', '--duration', '20s', '--aws-role-arn', ROLE, ...GCP_FLAGS, '--gcp-credential-source', 'file']);
    await sleep(1500);
    expect(refreshers(dir)).toEqual([pid]);

    const seen = await hammer(files, 18_000);
    for (const f of files) {
      const tokens = seen.get(f)!;
      expect(tokens.length, f).toBeGreaterThanOrEqual(2);
      const [a, b] = tokens.map((t) => decode(t).claims as { iat: number; exp: number; jti: string });
      // Replaced at 80 % of its life: about 16 s into a 20 s token (a loaded machine may make it
      // a little late), and before it expired, which every read above checked.
      expect(b!.jti).not.toBe(a!.jti);
      expect(b!.exp - a!.exp).toBeGreaterThanOrEqual(14);
      expect(b!.exp - a!.exp).toBeLessThanOrEqual(20);
    }
    expect(decode(readFileSync(files[1]!, 'utf8')).claims.aud).toBe(`https:${PROVIDER}`);
    expect(statSync(files[0]!).mode & 0o777).toBe(0o600);

    const c = await oz(['federate', 'cleanup', '--dir', dir], { env: baseEnv });
    expect(c.code).toBe(0);
    expect(refreshers(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);

  it('stops at the run deadline, with the last token lasting exactly to it', async () => {
    const dir = join(home, 'deadline');
    const deadline = Math.floor(Date.now() / 1000) + 13;
    const vars = await prepare(dir, ['--refresh', '--duration', '10s', '--aws-role-arn', ROLE], { OZ_RUN_DEADLINE: String(deadline) });
    const file = vars.AWS_WEB_IDENTITY_TOKEN_FILE!;
    await until('the refresher', () => refreshers(dir).length === 1, 10_000);
    const first = decode(readFileSync(file, 'utf8')).claims;
    expect(first.exp).toBeLessThan(deadline);
    await until('the refresher to stop', () => refreshers(dir).length === 0, 20_000);
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(deadline - 1);
    const last = decode(readFileSync(file, 'utf8')).claims;
    expect(last.jti).not.toBe(first.jti);
    expect(last.exp).toBe(deadline);
    expect(readFileSync(join(dir, 'oz-refresher.log'), 'utf8')).toMatch(/stopped: deadline/);
    expect(existsSync(join(dir, 'oz-refresher.pid'))).toBe(false);
  }, 60_000);

  it('stops when its directory is removed, and leaves nothing behind', async () => {
    const dir = join(home, 'removed');
    await prepare(dir, ['--refresh', '--duration', '10s', '--aws-role-arn', ROLE]);
    await until('the refresher', () => refreshers(dir).length === 1, 10_000);
    rmSync(dir, { recursive: true, force: true });
    await until('the refresher to stop', () => refreshers(dir).length === 0, 5_000);
    expect(existsSync(dir)).toBe(false);
  }, 30_000);

  it('remote mode: a failed refresh is retried and logged, the valid token stays in place, and the refresher recovers', async () => {
    const { OZ_ISSUER_URL: _, ...keyEnv } = baseEnv;
    let service = await serve(keyEnv);
    const url = service.url;
    const grant = await oz(['issuer', 'grant-run', '--run-id', 'run-remote', '--subject', 'user-r', '--max-duration', '1h', '--issuer', url], { env: baseEnv });
    expect(grant.code).toBe(0);
    const sandbox = join(home, 'sandbox');
    mkdirSync(sandbox, { mode: 0o700 });
    const env = scrubbedEnv(sandbox, { OZ_RUN_TOKEN: grant.stdout.trim(), OZ_ISSUER_URL: url, OZ_TOKEN_TIMEOUT: '2s' });
    const dir = join(sandbox, 'prepared');
    const r = await oz(['federate', 'prepare', '--dir', dir, '--refresh', '--duration', '10s', '--aws-role-arn', ROLE], { env });
    expect(r.code).toBe(0);
    const file = join(dir, 'aws-web-identity-token');
    const first = readFileSync(file, 'utf8');
    expect(decode(first).claims.sub).toBe('user-r');
    await service.stop();
    const log = join(dir, 'oz-refresher.log');
    await until('a logged failure', () => existsSync(log) && /refresh failed/.test(readFileSync(log, 'utf8')), 20_000);
    // The token in place is still the valid one: nothing was replaced by a failure.
    expect(readFileSync(file, 'utf8')).toBe(first);
    expect(readFileSync(log, 'utf8')).not.toContain(first);
    service = await serve(keyEnv, ['--port', new URL(url).port, '--issuer', url]);
    try {
      await until('the refresh', () => readFileSync(file, 'utf8') !== first, 20_000);
      expect(decode(readFileSync(file, 'utf8')).claims).toMatchObject({ sub: 'user-r', run_id: 'run-remote' });
      expect(readFileSync(log, 'utf8')).toMatch(/refreshed after \d+ failed attempt/);
    } finally {
      await oz(['federate', 'cleanup', '--dir', dir], { env });
      await service.stop();
    }
    expect(refreshers(dir)).toEqual([]);
  }, 60_000);

  it('refuses a --duration too short to refresh, and a bad one, before writing anything', async () => {
    const dir = join(home, 'short');
    for (const d of ['5s', 'soon']) {
      const r = await oz(['federate', 'prepare', '--dir', dir, '--refresh', '--duration', d, '--aws-role-arn', ROLE], { env: baseEnv });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^oz: .*--duration/);
      expect(existsSync(dir)).toBe(false);
    }
  });

  it('without --refresh, --duration sets the token files\' lifetime', async () => {
    const dir = join(home, 'duration');
    const vars = await prepare(dir, ['--duration', '15m', '--aws-role-arn', ROLE]);
    const { claims } = decode(readFileSync(vars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8'));
    expect((claims.exp as number) - Date.now() / 1000).toBeGreaterThan(15 * 60 - 10);
    expect((claims.exp as number) - Date.now() / 1000).toBeLessThanOrEqual(15 * 60);
    expect(refreshers(dir)).toEqual([]);
  });

  it('the AWS SDK for JavaScript and boto3 keep assuming the role across a refresh; google-auth-library and gcloud use the file-sourced config', async () => {
    const dir = join(home, 'clients');
    const vars = await prepare(dir, ['--refresh', '--duration', '10s', '--aws-role-arn', ROLE, ...GCP_FLAGS, '--gcp-credential-source', 'file']);
    const config = JSON.parse(readFileSync(vars.GOOGLE_APPLICATION_CREDENTIALS!, 'utf8'));
    expect(config.credential_source).toEqual({ file: join(dir, 'gcp-subject-token'), format: { type: 'text' } });
    expect(vars.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES).toBeUndefined();
    // Only Google's endpoints move to the stand-in; the credential source is oz's as written.
    config.token_url = gcp.tokenUrl;
    config.token_info_url = gcp.tokenInfoUrl;
    const moved = join(home, 'gcp-config-at-standin.json');
    writeFileSync(moved, JSON.stringify(config), { mode: 0o600 });
    const awsEnv = { ...vars, AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: aws.url };
    const gcpEnv = { ...vars, GOOGLE_APPLICATION_CREDENTIALS: moved, CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: moved };

    const jtis = async (): Promise<{ aws: string[]; gcp: string[] }> => {
      const awsBefore = aws.requests.length;
      const gcpBefore = gcp.requests.length;
      const [js, py, ga] = await Promise.all([
        resolveAwsJs({ provider: 'fromNodeProviderChain', env: awsEnv }),
        resolveBoto3({ env: awsEnv, getCallerIdentity: true }),
        googleAuthNodeAccessToken({ env: gcpEnv }),
      ]);
      expect(js.ok ? undefined : js.error).toBeUndefined();
      expect(py.ok ? undefined : py.error).toBeUndefined();
      expect(ga.ok ? undefined : ga.error).toBeUndefined();
      const a = aws.requests.slice(awsBefore).filter((q) => q.action === 'AssumeRoleWithWebIdentity' && q.ok);
      const g = gcp.requests.slice(gcpBefore).filter((q) => q.endpoint === 'token' && q.ok);
      expect(a.length).toBe(2);
      expect(g.length).toBe(1);
      return { aws: a.map((q) => String(q.claims!.jti)), gcp: g.map((q) => String(q.claims!.jti)) };
    };

    const before = await jtis();
    const gc = await gcloudPrintAccessToken({ env: { ...baseEnv, ...gcpEnv } });
    expect(gc.ok ? undefined : gc.error).toBeUndefined();
    const fileToken = readFileSync(vars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8');
    await until('a refresh', () => readFileSync(vars.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8') !== fileToken, 15_000);
    await until('the GCP file refresh', () => decode(readFileSync(join(dir, 'gcp-subject-token'), 'utf8')).claims.jti !== before.gcp[0], 15_000);
    const after = await jtis();
    // The SDKs read the file again, and STS accepted the new token.
    for (const j of after.aws) expect(before.aws).not.toContain(j);
    expect(after.gcp[0]).not.toBe(before.gcp[0]);
    await oz(['federate', 'cleanup', '--dir', dir], { env: baseEnv });
    expect(refreshers(dir)).toEqual([]);
  }, 120_000);
});

describe.concurrent('oz federate exec', () => {
  const execDirs = (runtime: string) => readdirSync(runtime);
  /** A runtime directory of the test's own, as a login manager makes it: exec's directory goes in it. */
  const runtimeDir = (name: string) => {
    const dir = join(home, name);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  };

  it("runs the command with the credentials in its environment only, and exits with its status; nothing is left behind", async () => {
    const runtime = runtimeDir('exec-status');
    const env = { ...baseEnv, XDG_RUNTIME_DIR: runtime };
    const script = 'test -n "$AWS_ROLE_ARN" && printf "%s\\n%s\\n" "$AWS_WEB_IDENTITY_TOKEN_FILE" "$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE")" && exit 7';
    const r = await oz(['federate', 'exec', '--aws-role-arn', ROLE, '--', 'sh', '-c', script], { env });
    expect(r.code).toBe(7);
    expect(r.stderr).toBe('');
    const [file, token] = r.stdout.trim().split('\n');
    expect(file!.startsWith(join(runtime, 'oz-exec-'))).toBe(true);
    await jwtVerify(token!, keys, { issuer: issuer.url, audience: 'sts.amazonaws.com' });
    expect(existsSync(file!)).toBe(false);
    expect(execDirs(runtime)).toEqual([]);

    const killed = await oz(['federate', 'exec', '--aws-role-arn', ROLE, '--', 'sh', '-c', 'kill -TERM $$'], { env });
    expect(killed.code).toBe(128 + 15);
    expect(execDirs(runtime)).toEqual([]);

    const missing = await oz(['federate', 'exec', '--aws-role-arn', ROLE, '--', 'no-such-command-oz'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^oz: cannot run "no-such-command-oz"/);
    expect(missing.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(execDirs(runtime)).toEqual([]);
  }, 60_000);

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('passes %s on to the command and still removes the directory', async (signal) => {
    const runtime = runtimeDir(`exec-${signal}`);
    const script = `trap 'echo "got $1"; exit 5' ${signal.slice(3)}; echo "$AWS_WEB_IDENTITY_TOKEN_FILE"; while :; do sleep 0.1; done`;
    const child = spawn(OZ_BIN, ['federate', 'exec', '--aws-role-arn', ROLE, '--', 'sh', '-c', script, 'sh', signal], {
      env: { ...baseEnv, XDG_RUNTIME_DIR: runtime },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('the command to start', () => out.includes('\n'), 20_000);
    const file = out.split('\n')[0]!;
    expect(existsSync(file)).toBe(true);
    child.kill(signal);
    const code = await exited;
    expect(out).toContain(`got ${signal}`);
    expect(code).toBe(5);
    expect(existsSync(file)).toBe(false);
    expect(execDirs(runtime)).toEqual([]);
  }, 30_000);

  it('keeps the token fresh while the command runs', async () => {
    const runtime = runtimeDir('exec-fresh');
    const script = 'a=$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE"); sleep 10; b=$(cat "$AWS_WEB_IDENTITY_TOKEN_FILE"); printf "%s\\n%s\\n" "$a" "$b"';
    const r = await run(OZ_BIN, ['federate', 'exec', '--duration', '10s', '--aws-role-arn', ROLE, '--', 'sh', '-c', script], {
      env: { ...baseEnv, XDG_RUNTIME_DIR: runtime },
    });
    expect(r.code).toBe(0);
    const [a, b] = r.stdout.trim().split('\n');
    expect(b).not.toBe(a);
    const claims = (await jwtVerify(b!, keys, { issuer: issuer.url })).payload;
    expect(claims.exp! * 1000).toBeGreaterThan(Date.now());
    expect(execDirs(runtime)).toEqual([]);
  }, 40_000);

  it('refuses a missing command as a usage error', async () => {
    const r = await oz(['federate', 'exec', '--aws-role-arn', ROLE], { env: baseEnv });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^oz: /);
  });
});
