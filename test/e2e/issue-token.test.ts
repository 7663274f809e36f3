import { describe, expect, it, beforeEach } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, oz, scrubbedEnv, tempDir } from '../helpers/oz.js';

let home: string;
let env: Record<string, string>;
beforeEach(() => {
  home = tempDir();
  env = scrubbedEnv(home);
});

const RUN_ENV = {
  OZ_RUN_ID: 'run-42',
  OZ_SUBJECT: 'user-7',
  OZ_EMAIL: 'dev@example.com',
  OZ_TEAMS: 'team-a',
  OZ_ENVIRONMENT_ID: 'env-9',
  OZ_AGENT_NAME: 'deployer',
  OZ_SKILL_SPEC: 'org/repo:.warp/skills/deployer/SKILL.md',
  OZ_HOST: 'warp',
};

describe('oz federate issue-token (embedded issuer)', () => {
  it('prints one signed JWT and a newline, with the run context as claims, on a fresh data directory', async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env: { ...env, ...RUN_ENV } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { header, claims } = decode(r.stdout.trim());
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(typeof header.kid).toBe('string');
    expect(claims).toMatchObject({
      iss: 'http://127.0.0.1:8787',
      sub: 'user-7',
      aud: 'sts.amazonaws.com',
      email: 'dev@example.com',
      teams: ['team-a'],
      run_id: 'run-42',
      environment: 'env-9',
      agent_name: 'deployer',
      skill_spec: 'org/repo:.warp/skills/deployer/SKILL.md',
      host: 'warp',
    });
    const now = Date.now() / 1000;
    expect(claims.exp as number).toBeGreaterThan(now + 3590);
    expect(claims.exp as number).toBeLessThanOrEqual(now + 3601);
    expect(claims.iat as number).toBeLessThan(now);
    const dataDir = join(home, 'oz-data');
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dataDir)) expect(statSync(join(dataDir, f)).mode & 0o777).toBe(0o600);
  });

  it('--format json gives token, expires_at and claims', async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'vault', '--duration', '15m', '--format', 'json'], { env });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(['claims', 'expires_at', 'token']);
    expect(decode(doc.token).claims).toEqual(doc.claims);
    expect(Date.parse(doc.expires_at) / 1000).toBe(doc.claims.exp);
    expect(doc.claims.exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(890);
    expect(doc.claims.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(900);
  });

  it('signs ES256 when OZ_SIGNING_ALG=ES256 creates the key', async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: { ...env, OZ_SIGNING_ALG: 'ES256' } });
    expect(r.code).toBe(0);
    expect(decode(r.stdout.trim()).header.alg).toBe('ES256');
    expect(Buffer.from(r.stdout.trim().split('.')[2]!, 'base64url').length).toBe(64);
  });

  it.each([
    // The deadline is set when the test runs, not when the file loads: a busy machine may start it late.
    ['the deadline', () => ({ OZ_RUN_DEADLINE: new Date(Date.now() + 600_000).toISOString() }), 600],
    ['the maximum run duration', () => ({ OZ_MAX_RUN_DURATION: '20m' }), 1200],
  ])('caps the lifetime at %s without failing', async (_n, extra, cap) => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a', '--duration', '2h', '--format', 'json'], { env: { ...env, ...extra() } });
    expect(r.code).toBe(0);
    const left = JSON.parse(r.stdout).claims.exp - Date.now() / 1000;
    expect(left).toBeLessThanOrEqual(cap + 1);
    expect(left).toBeGreaterThan(cap - 5);
  });

  it.each([
    ['0', 'invalid --duration "0": it must be longer than zero'],
    ['-5m', 'invalid --duration "-5m": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['banana', 'invalid --duration "banana": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['10x', 'invalid --duration "10x": expected a duration like 90s, 15m, 1h30m, 2h or plain seconds'],
    ['999999999h', 'invalid --duration "999999999h": it is longer than 366 days'],
    ['', 'invalid --duration "": it is empty'],
  ])('--duration %j is a usage error (exit 2) with one line on stderr', async (d, message) => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a', '--duration', d], { env });
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: `oz: ${message}\n` });
  });

  it.each([
    [['--audience', 'a\nb'], 'oz: invalid audience "a\\nb": it contains control characters\n'],
    [['--audience', 'a\u001b[31m'], 'oz: invalid audience "a\\u001b[31m": it contains control characters\n'],
    [[], `oz: missing audience: pass --audience with the relying party's expected "aud" (for AWS: sts.amazonaws.com)\n`],
  ])('bad audience %j is a usage error', async (args, stderr) => {
    const r = await oz(['federate', 'issue-token', ...args], { env });
    expect(r).toMatchObject({ code: 2, stdout: '', stderr });
  });

  it('an unknown flag is a usage error from commander, in one line', async () => {
    const r = await oz(['federate', 'issue-token', '--audince', 'a'], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: unknown option '--audince' \(Did you mean --audience\?\) \(see `oz federate issue-token --help`\)\n$/);
  });

  it.each([
    ['OZ_RUN_DEADLINE in the past', { OZ_RUN_DEADLINE: '2020-01-01T00:00:00Z' }, 4, /^oz: the run's deadline 2020-01-01T00:00:00.000Z passed .* ago: no token can be issued for it \(OZ_RUN_DEADLINE\)\n$/],
    ['OZ_RUN_DEADLINE unparsable', { OZ_RUN_DEADLINE: 'next tuesday' }, 3, /^oz: invalid OZ_RUN_DEADLINE "next tuesday": expected an RFC 3339 time/],
    ['OZ_MAX_RUN_DURATION garbage', { OZ_MAX_RUN_DURATION: 'lots' }, 3, /^oz: invalid OZ_MAX_RUN_DURATION "lots": expected a duration/],
    ['OZ_ISSUER_URL garbage', { OZ_ISSUER_URL: 'ftp://x' }, 3, /^oz: invalid OZ_ISSUER_URL "ftp:\/\/x"/],
    ['OZ_SIGNING_ALG unsupported', { OZ_SIGNING_ALG: 'HS256' }, 3, /^oz: invalid OZ_SIGNING_ALG "HS256": use RS256 or ES256/],
  ])('%s: one clear line and its exit code', async (_n, extra, code, message) => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env: { ...env, ...extra } });
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  describe('key store failures never replace the key', () => {
    it('a corrupt key file is a configuration error and stays as it was', async () => {
      const dataDir = join(home, 'oz-data');
      mkdirSync(dataDir, { mode: 0o700 });
      writeFileSync(join(dataDir, 'signing-key.json'), '{"kid":', { mode: 0o600 });
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^oz: signing key ".*signing-key.json" is unusable \(not valid JSON\); oz will not replace it/);
      expect(readFileSync(join(dataDir, 'signing-key.json'), 'utf8')).toBe('{"kid":');
    });

    it('an unreadable key file is a configuration error, and the key issued with before still signs once it is back', async () => {
      const first = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      const keyFile = join(home, 'oz-data', 'signing-key.json');
      const saved = join(home, 'saved-key.json');
      renameSync(keyFile, saved);
      // A directory in its place cannot be read by anyone, root included.
      mkdirSync(keyFile, { mode: 0o700 });
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^oz: signing key ".*signing-key.json" is unusable \(it is not a regular file\); oz will not replace it/);
      expect(statSync(keyFile).isDirectory()).toBe(true);
      rmdirSync(keyFile);
      renameSync(saved, keyFile);
      const again = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      expect(decode(again.stdout).header.kid).toBe(decode(first.stdout).header.kid);
    });

    it('a data directory writable by group or others is refused', async () => {
      const dataDir = join(home, 'oz-data');
      mkdirSync(dataDir);
      chmodSync(dataDir, 0o777);
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^oz: data directory ".*oz-data" has mode 777, open to other users; run: chmod 700 /);
      expect(existsSync(join(dataDir, 'signing-key.json'))).toBe(false);
    });

    it.runIf(process.getuid?.() === 0)('a data directory owned by another user is refused', async () => {
      const dataDir = join(home, 'oz-data');
      mkdirSync(dataDir, { mode: 0o700 });
      chownSync(dataDir, 65534, 65534);
      const r = await oz(['federate', 'issue-token', '--audience', 'a'], { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^oz: data directory ".*oz-data" is owned by uid 65534, not by the current user \(uid 0\)/);
    });
  });
});

describe('oz federate issue-token --format gcp', () => {
  const AUD = '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool-1/providers/prov-1';

  it('answers the executable-sourced response, with the https form of the audience as the claim', async () => {
    const out = join(home, 'cache.json');
    const r = await oz(['federate', 'issue-token', '--format', 'gcp'], {
      env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD, GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: out, GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(['expiration_time', 'id_token', 'success', 'token_type', 'version']);
    expect(doc).toMatchObject({ version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    const { claims } = decode(doc.id_token);
    expect(claims.aud).toBe(`https:${AUD}`);
    expect(doc.expiration_time).toBe(claims.exp);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(doc);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['a missing audience', [], {}, 'usage', 2],
    ['a bad duration', ['--duration', 'banana'], { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD }, 'usage', 2],
    ['an unknown flag', ['--bogus'], { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD }, 'usage', 2],
    ['an expired run', [], { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD, OZ_RUN_DEADLINE: '1000000000' }, 'run_expired', 4],
    ['a bad environment', [], { GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD, OZ_MAX_RUN_DURATION: 'x' }, 'config', 3],
  ])('%s: success:false JSON, non-zero exit, not one byte on stderr, no cache written', async (_n, args, extra, code, exit) => {
    const out = join(home, 'cache.json');
    const r = await oz(['federate', 'issue-token', '--format', 'gcp', ...args], {
      env: { ...env, ...extra, GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE: out },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(exit);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ version: 1, success: false, code });
    expect(typeof doc.message).toBe('string');
    expect(existsSync(out)).toBe(false);
  });

  it('decides the format by the --format that wins, in either order', async () => {
    const env2 = { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD };
    const gcpLast = await oz(['federate', 'issue-token', '--format', 'json', '--audience', 'a', '--format=gcp'], { env: env2 });
    expect(gcpLast).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(gcpLast.stdout)).toMatchObject({ version: 1, success: true });
    const gcpFirst = await oz(['federate', 'issue-token', '--format', 'gcp', '--audience', 'a', '--format', 'json'], { env: env2 });
    expect(gcpFirst.code).toBe(0);
    expect(Object.keys(JSON.parse(gcpFirst.stdout)).sort()).toEqual(['claims', 'expires_at', 'token']);
  });

  it('keeps stderr empty even when Node itself warns', async () => {
    // A preloaded module makes Node emit a warning (and a deprecation) the moment oz writes its
    // answer, and writes straight to stderr: all of it must be kept off the merged output.
    const preload = join(home, 'warn.cjs');
    writeFileSync(
      preload,
      `const w = process.stdout.write.bind(process.stdout);
       let once = false;
       process.stdout.write = (...a) => {
         if (!once) { once = true; process.emitWarning('something odd', 'ExperimentalWarning'); process.emitWarning('old api', 'DeprecationWarning', 'DEP0999'); process.stderr.write('noise\\n'); }
         return w(...a);
       };`,
    );
    const r = await oz(['federate', 'issue-token', '--format', 'gcp'], {
      env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: AUD, NODE_OPTIONS: `--require ${preload}` },
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).success).toBe(true);
    // The same preload does reach stderr in the other formats: the test can tell.
    const jwt = await oz(['federate', 'issue-token', '--audience', 'a'], { env: { ...env, NODE_OPTIONS: `--require ${preload}` } });
    expect(jwt.stderr).toContain('something odd');
  });
});
