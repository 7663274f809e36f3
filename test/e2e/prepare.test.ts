import { describe, expect, it, beforeEach } from 'vitest';
import { chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { decode, oz, OZ_BIN, OZ_BIN_IS_SINGLE_FILE, run, scrubbedEnv, tempDir } from '../helpers/oz.js';

const ROLE = 'arn:aws:iam::123456789012:role/oz-agent';
const GCP_FLAGS = ['--gcp-project-number', '123456789012', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider'];
const AUDIENCE = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';

let home: string;
let env: Record<string, string>;
let dir: string;
beforeEach(() => {
  home = tempDir();
  env = scrubbedEnv(home, { OZ_RUN_ID: 'run-1' });
  dir = join(home, 'prepared');
});

async function prepareJson(args: string[], extra: Record<string, string> = {}) {
  const r = await oz(['federate', 'prepare', '--dir', dir, '--shell', 'json', ...args], { env: { ...env, ...extra } });
  return { ...r, vars: r.code === 0 && r.stdout ? (JSON.parse(r.stdout) as Record<string, string>) : undefined };
}

describe('oz federate prepare', () => {
  it('writes the AWS token file and exports the web identity variables', async () => {
    const deadline = new Date(Date.now() + 2 * 3600_000);
    const r = await prepareJson(['--aws-role-arn', ROLE], { OZ_RUN_DEADLINE: deadline.toISOString(), OZ_SUBJECT: 'user-5' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.vars).toEqual({
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, 'aws-web-identity-token'),
      AWS_ROLE_SESSION_NAME: 'Oz_Run_run-1',
    });
    const bytes = readFileSync(join(dir, 'aws-web-identity-token'), 'utf8');
    expect(bytes).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const { claims } = decode(bytes);
    expect(claims).toMatchObject({ aud: 'sts.amazonaws.com', sub: 'user-5', run_id: 'run-1' });
    // Valid for the rest of the run: until the deadline.
    expect(claims.exp).toBe(Math.floor(deadline.getTime() / 1000));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'aws-web-identity-token')).mode & 0o777).toBe(0o600);
  });

  it('without a deadline the token lasts the maximum run duration', async () => {
    const r = await prepareJson(['--aws-role-arn', ROLE], { OZ_MAX_RUN_DURATION: '3h' });
    const { claims } = decode(readFileSync(r.vars!.AWS_WEB_IDENTITY_TOKEN_FILE!, 'utf8'));
    expect((claims.exp as number) - Date.now() / 1000).toBeGreaterThan(3 * 3600 - 10);
    expect((claims.exp as number) - Date.now() / 1000).toBeLessThanOrEqual(3 * 3600);
  });

  it('writes the GCP executable-sourced config naming oz itself, and exports ADC and gcloud variables', async () => {
    const r = await prepareJson([...GCP_FLAGS, '--gcp-project-id', 'my-project']);
    expect(r.code).toBe(0);
    const config = join(dir, 'gcp-credentials.json');
    expect(r.vars).toEqual({
      GOOGLE_APPLICATION_CREDENTIALS: config,
      CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE: config,
      GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '1',
      GOOGLE_CLOUD_PROJECT: 'my-project',
      CLOUDSDK_CORE_PROJECT: 'my-project',
    });
    expect(JSON.parse(readFileSync(config, 'utf8'))).toEqual({
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience: AUDIENCE,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: {
        executable: { command: `${OZ_BIN} federate issue-token --format gcp`, timeout_millis: 30000, output_file: join(dir, 'gcp-executable-output.json') },
      },
      token_info_url: 'https://sts.googleapis.com/v1/introspect',
    });
    expect(statSync(config).mode & 0o777).toBe(0o600);
  });

  it('names the impersonation URL when a service account is given (from the environment)', async () => {
    const r = await prepareJson([], {
      OZ_GCP_PROJECT_NUMBER: '123456789012',
      OZ_GCP_POOL_ID: 'oz-pool',
      OZ_GCP_PROVIDER_ID: 'oz-provider',
      OZ_GCP_SERVICE_ACCOUNT: 'agent@proj-1.iam.gserviceaccount.com',
    });
    expect(r.code).toBe(0);
    const config = JSON.parse(readFileSync(r.vars!.GOOGLE_APPLICATION_CREDENTIALS!, 'utf8'));
    expect(config.service_account_impersonation_url).toBe(
      'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/agent@proj-1.iam.gserviceaccount.com:generateAccessToken',
    );
    expect(config).not.toHaveProperty('token_info_url');
  });

  it('a flag wins over its environment variable', async () => {
    const r = await prepareJson(['--aws-role-arn', ROLE], { OZ_AWS_ROLE_ARN: 'arn:aws:iam::999999999999:role/other' });
    expect(r.vars!.AWS_ROLE_ARN).toBe(ROLE);
  });

  it('removes a response cached for an earlier run', async () => {
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'gcp-executable-output.json'), '{"stale":true}', { mode: 0o600 });
    await prepareJson(GCP_FLAGS);
    expect(existsSync(join(dir, 'gcp-executable-output.json'))).toBe(false);
  });

  it('nothing configured: exit 0, empty stdout, one note on stderr, nothing written', async () => {
    const r = await oz(['federate', 'prepare', '--dir', dir], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: nothing to prepare: no AWS role .*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(existsSync(dir)).toBe(false);
  });

  it('warns when static AWS keys would win over web identity', async () => {
    const r = await prepareJson(['--aws-role-arn', ROLE], { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^oz: warning: AWS_ACCESS_KEY_ID is set; every AWS SDK prefers static keys to web identity/);
    expect(r.stderr).not.toContain('AKIAEXAMPLE');
  });

  it.each([
    ['a run ID with characters STS refuses', 'run/7 ünïcode', /^Oz_Run_run-7-.*\.[0-9a-f]{12}$/],
    ['a 200-character run ID', 'r'.repeat(200), /^Oz_Run_r{44}\.[0-9a-f]{12}$/],
  ])('session names follow STS rules for %s, stable and with a hash of the run ID', async (_n, runId, shape) => {
    const a = await prepareJson(['--aws-role-arn', ROLE], { OZ_RUN_ID: runId });
    const b = await prepareJson(['--aws-role-arn', ROLE], { OZ_RUN_ID: runId });
    const name = a.vars!.AWS_ROLE_SESSION_NAME!;
    expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(name).toMatch(shape);
    expect(b.vars!.AWS_ROLE_SESSION_NAME).toBe(name);
    expect(name.slice(-12)).toBe(createHash('sha256').update(runId).digest('hex').slice(0, 12));
    const other = await prepareJson(['--aws-role-arn', ROLE], { OZ_RUN_ID: `${runId}x` });
    expect(other.vars!.AWS_ROLE_SESSION_NAME).not.toBe(name);
  });

  describe('refused input writes nothing and prints nothing on stdout', () => {
    it.each([
      ['a malformed ARN', ['--aws-role-arn', 'arn:aws:iam::12345:role/x'], {}, 2, /^oz: invalid --aws-role-arn "arn:aws:iam::12345:role\/x": expected arn:aws:iam::123456789012:role\/NAME \(the account ID must be 12 digits\)$/m],
      ['an ARN from the environment', [], { OZ_AWS_ROLE_ARN: 'arn:aws:s3:::bucket' }, 3, /^oz: invalid OZ_AWS_ROLE_ARN "arn:aws:s3:::bucket"/],
      ['a run ID with a newline', ['--aws-role-arn', ROLE], { OZ_RUN_ID: 'run\n1' }, 3, /^oz: invalid OZ_RUN_ID "run\\n1": it contains control characters$/m],
      ['no team in OZ_TEAMS', ['--aws-role-arn', ROLE], { OZ_TEAMS: ',,,' }, 3, /^oz: invalid OZ_TEAMS ",,,": nothing in it \(comma-separated team UIDs\)/],
      ['a run-context value over 1024 characters', ['--aws-role-arn', ROLE], { OZ_ENVIRONMENT_ID: 'e'.repeat(120_000) }, 3, /^oz: invalid OZ_ENVIRONMENT_ID "e+…": it is 120000 characters long, more than 1024$/m],
      ['a non-numeric project number', ['--gcp-project-number', '12a', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider'], {}, 2, /project number/],
      ['a pool ID starting with gcp-', ['--gcp-project-number', '1', '--gcp-pool-id', 'gcp-pool', '--gcp-provider-id', 'oz-provider'], {}, 2, /pool ID "gcp-pool"/],
      ['a provider ID too short', ['--gcp-project-number', '1', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'abc'], {}, 2, /provider ID "abc"/],
      ['upper case in a pool ID', ['--gcp-project-number', '1', '--gcp-pool-id', 'Oz-Pool', '--gcp-provider-id', 'oz-provider'], {}, 2, /pool ID "Oz-Pool"/],
      ['GCP settings half given', ['--gcp-project-number', '1'], {}, 2, /--gcp-pool-id/],
      ['a bad service account', [...GCP_FLAGS, '--gcp-service-account', 'not an email'], {}, 2, /service account/],
      ['a bad shell', ['--aws-role-arn', ROLE, '--shell', 'tcsh'], {}, 2, /tcsh/],
      ['a run past its deadline', ['--aws-role-arn', ROLE], { OZ_RUN_DEADLINE: '2001-01-01T00:00:00Z' }, 4, /^oz: the run's deadline/],
      ['a broken run context', ['--aws-role-arn', ROLE], { OZ_MAX_RUN_DURATION: 'soon' }, 3, /OZ_MAX_RUN_DURATION/],
    ])('%s', async (_n, args, extra, code, message) => {
      const r = await oz(['federate', 'prepare', '--dir', dir, ...args], { env: { ...env, ...extra } });
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(existsSync(dir)).toBe(false);
    });

    it("refuses an oz path with whitespace, since Google's libraries split the command on it", async () => {
      const spaced = join(home, 'my tools');
      mkdirSync(spaced);
      // The single executable names its own file (not a link to it), so it is copied there.
      if (OZ_BIN_IS_SINGLE_FILE) copyFileSync(OZ_BIN, join(spaced, 'oz'));
      else symlinkSync(OZ_BIN, join(spaced, 'oz'));
      const r = await run(join(spaced, 'oz'), ['federate', 'prepare', '--dir', dir, '--aws-role-arn', ROLE, ...GCP_FLAGS], { env });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^oz: cannot name oz in the GCP credential config: its path ".*my tools\/oz" contains whitespace/);
      expect(existsSync(dir)).toBe(false);
    });
  });

  describe('the private directory', () => {
    it('defaults to $XDG_RUNTIME_DIR/oz, else oz-<uid> in the temp directory', async () => {
      const runtime = join(home, 'run');
      mkdirSync(runtime, { mode: 0o700 });
      const a = await oz(['federate', 'prepare', '--aws-role-arn', ROLE, '--shell', 'json'], { env });
      expect(JSON.parse(a.stdout).AWS_WEB_IDENTITY_TOKEN_FILE).toBe(join(runtime, 'oz', 'aws-web-identity-token'));
      const { XDG_RUNTIME_DIR: _drop, ...noRuntime } = env;
      const b = await oz(['federate', 'prepare', '--aws-role-arn', ROLE, '--shell', 'json'], { env: noRuntime });
      expect(JSON.parse(b.stdout).AWS_WEB_IDENTITY_TOKEN_FILE).toBe(join(home, `oz-${process.getuid!()}`, 'aws-web-identity-token'));
      expect(statSync(join(home, `oz-${process.getuid!()}`)).mode & 0o777).toBe(0o700);
    });

    it('refuses a directory that is a symlink', async () => {
      const real = join(home, 'real');
      mkdirSync(real, { mode: 0o700 });
      symlinkSync(real, dir);
      const r = await oz(['federate', 'prepare', '--dir', dir, '--aws-role-arn', ROLE], { env });
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^oz: prepare directory ".*prepared" is a symbolic link; refusing to use it/);
      expect(readdirSync(real)).toEqual([]);
    });

    it.runIf(process.getuid?.() === 0)('refuses a directory owned by another user', async () => {
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, 65534, 65534);
      const r = await oz(['federate', 'prepare', '--dir', dir, '--aws-role-arn', ROLE], { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/is owned by uid 65534, not by the current user/);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('refuses a directory others can read', async () => {
      mkdirSync(dir);
      chmodSync(dir, 0o755);
      const r = await oz(['federate', 'prepare', '--dir', dir, '--aws-role-arn', ROLE], { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/has mode 755, open to other users/);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('never writes through a symlink planted where a file goes', async () => {
      mkdirSync(dir, { mode: 0o700 });
      const victim = join(home, 'victim');
      writeFileSync(victim, 'precious', { mode: 0o644 });
      symlinkSync(victim, join(dir, 'aws-web-identity-token'));
      symlinkSync(victim, join(dir, 'gcp-credentials.json'));
      const r = await prepareJson(['--aws-role-arn', ROLE, ...GCP_FLAGS]);
      expect(r.code).toBe(0);
      expect(readFileSync(victim, 'utf8')).toBe('precious');
      expect(lstatSync(join(dir, 'aws-web-identity-token')).isFile()).toBe(true);
      expect(lstatSync(join(dir, 'gcp-credentials.json')).isFile()).toBe(true);
    });

    it('leaves no temporary files behind', async () => {
      await prepareJson(['--aws-role-arn', ROLE, ...GCP_FLAGS]);
      // The files and the list of token files (what a refresher and cleanup work from).
      expect(readdirSync(dir).sort()).toEqual(['aws-web-identity-token', 'gcp-credentials.json', 'oz-token-files.json']);
      expect(JSON.parse(readFileSync(join(dir, 'oz-token-files.json'), 'utf8'))).toEqual({
        version: 1,
        duration_seconds: 24 * 3600,
        files: [{ file: 'aws-web-identity-token', audience: 'sts.amazonaws.com' }],
      });
    });
  });

  it('cleanup refuses a directory that is a symlink and removes nothing through it', async () => {
    const real = join(home, 'real');
    mkdirSync(real, { mode: 0o700 });
    writeFileSync(join(real, 'aws-web-identity-token'), 'keep', { mode: 0o600 });
    symlinkSync(real, dir);
    const r = await oz(['federate', 'cleanup', '--dir', dir], { env });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: prepare directory ".*prepared" is a symbolic link; refusing to use it/);
    expect(readFileSync(join(real, 'aws-web-identity-token'), 'utf8')).toBe('keep');
  });

  it('cleanup removes what prepare wrote and prints the lines that unset its variables', async () => {
    const before = await oz(['federate', 'prepare', '--dir', dir, '--aws-role-arn', ROLE, ...GCP_FLAGS, '--gcp-project-id', 'my-project'], { env });
    expect(before.code).toBe(0);
    const script = `eval "$(${OZ_BIN} federate prepare --dir '${dir}' --aws-role-arn ${ROLE} ${GCP_FLAGS.join(' ')})" && eval "$(${OZ_BIN} federate cleanup --dir '${dir}')" && env`;
    const r = await run('/bin/sh', ['-c', script], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/^(AWS_|GOOGLE_|CLOUDSDK_)/m);
    // The two files and the list of token files beside them.
    expect(r.stderr).toMatch(/^oz: removed 3 file\(s\) from /m);
    expect(existsSync(dir)).toBe(false);
    const again = await oz(['federate', 'cleanup', '--dir', dir, '--shell', 'fish'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('set -e AWS_ROLE_ARN');
  });
});
