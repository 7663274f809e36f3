// The single executable, dist/sea/oz (`npm run build:sea`), as a user gets it: one file copied
// into a directory of an image that has no Node, run by its bare name from PATH. The whole
// end-to-end suite also runs against it in CI (OZ_TEST_BIN=dist/sea/oz, see .ci/run); this
// file checks what only the single file has to prove.
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createPublicKey, verify } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { decode, run, tempDir, type RunResult } from './helpers/oz.js';

const SEA = resolve(__dirname, '../dist/sea/oz');
const { version } = JSON.parse(readFileSync(resolve(__dirname, '../package.json'), 'utf8')) as { version: string };
const GCP_FLAGS = ['--gcp-project-number', '123456789012', '--gcp-pool-id', 'oz-pool', '--gcp-provider-id', 'oz-provider'];
const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oz-pool/providers/oz-provider';

describe.skipIf(!existsSync(SEA))('the single executable (dist/sea/oz)', () => {
  let home: string;
  let bin: string;
  let installed: string;
  let env: Record<string, string>;

  beforeAll(() => {
    home = tempDir('oz-sea-');
    bin = join(home, 'bin');
    mkdirSync(bin);
    installed = join(bin, 'oz');
    copyFileSync(SEA, installed);
    // PATH is this one directory: no node, no npm, nothing but oz.
    env = { PATH: bin, HOME: home, OZ_DATA_DIR: join(home, 'oz-data'), TMPDIR: home, LANG: 'C.UTF-8' };
  });

  /** oz by its bare name, found on PATH, from the home directory. */
  const oz = (args: string[], extra: Record<string, string> = {}): Promise<RunResult> =>
    run('oz', args, { env: { ...env, ...extra }, cwd: home });

  it('runs from a PATH with no node on it', async () => {
    expect(readdirSync(bin)).toEqual(['oz']);
    const r = await run('node', ['--version'], { env }).catch((e: NodeJS.ErrnoException) => e.code);
    expect(r).toBe('ENOENT');
  });

  it("runs the README's first command: a token and its claims, signed by the key it created", async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com', '--format', 'json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const { token, claims } = JSON.parse(r.stdout) as { token: string; claims: Record<string, unknown> };
    expect(claims).toMatchObject({ aud: 'sts.amazonaws.com', iss: 'http://127.0.0.1:8787' });

    const jwks = await oz(['issuer', 'jwks']);
    expect(jwks.code).toBe(0);
    const { header } = decode(token);
    const jwk = (JSON.parse(jwks.stdout).keys as Array<{ kid: string }>).find((k) => k.kid === header.kid);
    expect(jwk).toBeDefined();
    const [h, p, s] = token.split('.');
    const key = createPublicKey({ key: jwk as never, format: 'jwk' });
    expect(verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s!, 'base64url'))).toBe(true);
  });

  it('takes nothing of one run from the snapshot: each run has its own jti and its own context', async () => {
    // The snapshot is taken after a rehearsal that signs tokens; a random pool or a context
    // captured then would make every run alike.
    const runs = await Promise.all(
      ['run-a', 'run-b', 'run-c'].map((id) => oz(['federate', 'issue-token', '--audience', 'a', '--format', 'json'], { OZ_RUN_ID: id, OZ_SUBJECT: `user-${id}` })),
    );
    const claims = runs.map((r) => JSON.parse(r.stdout).claims as Record<string, unknown>);
    expect(new Set(claims.map((c) => c.jti)).size).toBe(3);
    expect(claims.map((c) => [c.run_id, c.sub])).toEqual([
      ['run-a', 'user-run-a'],
      ['run-b', 'user-run-b'],
      ['run-c', 'user-run-c'],
    ]);
    const now = Math.floor(Date.now() / 1000);
    for (const c of claims) expect(Math.abs((c.iat as number) + 30 - now)).toBeLessThan(60);
  });

  // A Node-less image at its smallest: a root directory with the executable and the C and C++
  // runtime libraries it links (ldd), nothing else: no /usr, no /etc, no shell. chroot needs root.
  it.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/sbin/chroot') || !existsSync('/usr/bin/ldd'))(
    "runs the README's first command in a root directory that holds only itself and its libraries",
    async () => {
      const root = tempDir('oz-sea-root-');
      mkdirSync(join(root, 'bin'));
      mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
      copyFileSync(SEA, join(root, 'bin', 'oz'));
      const ldd = await run('/usr/bin/ldd', [SEA], { env: { PATH: '/usr/bin:/bin' } });
      expect(ldd.code).toBe(0);
      for (const lib of ldd.stdout.match(/\/\S+/g) ?? []) {
        mkdirSync(join(root, dirname(lib)), { recursive: true });
        copyFileSync(lib, join(root, lib));
      }
      const r = await run('/usr/sbin/chroot', [root, '/bin/oz', 'federate', 'issue-token', '--audience', 'sts.amazonaws.com', '--format', 'json'], {
        env: { PATH: '/bin', HOME: '/tmp', OZ_DATA_DIR: '/tmp/oz-data', OZ_RUN_ID: 'image-run' },
      });
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout).claims).toMatchObject({ aud: 'sts.amazonaws.com', run_id: 'image-run' });
      expect(existsSync(join(root, 'tmp', 'oz-data', 'signing-key.json'))).toBe(true);
    },
  );

  it('prints the version of package.json', async () => {
    const r = await oz(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it("names its own absolute path as the GCP credential executable, and Google's command line runs it", async () => {
    const dir = join(home, 'prepared');
    const r = await oz(['federate', 'prepare', ...GCP_FLAGS, '--dir', dir]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const config = JSON.parse(readFileSync(join(dir, 'gcp-credentials.json'), 'utf8'));
    const command: string = config.credential_source.executable.command;
    expect(command).toBe(`${installed} federate issue-token --format gcp`);

    // As the libraries run it: split on whitespace, with their variables, stderr merged.
    const [file, ...args] = command.split(/\s+/);
    const g = await run(file!, args, {
      env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: PROVIDER, GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt', GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: '0' },
      cwd: '/',
    });
    expect(g).toMatchObject({ code: 0, stderr: '' });
    const response = JSON.parse(g.stdout);
    expect(response).toMatchObject({ version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt' });
    expect(decode(response.id_token).claims.aud).toBe(`https:${PROVIDER}`);
  });

  it('runs the commands outside the start-up path: help, whoami, issuer discovery', async () => {
    const help = await oz(['federate', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('issue-token');
    const who = await oz(['federate', 'whoami', '--json'], { OZ_RUN_ID: 'run-9' });
    expect(who.code).toBe(0);
    expect(JSON.stringify(JSON.parse(who.stdout))).toContain('run-9');
    const discovery = await oz(['issuer', 'discovery']);
    expect(discovery.code).toBe(0);
    expect(JSON.parse(discovery.stdout).issuer).toBe('http://127.0.0.1:8787');
  });

  it('reports bad input in one line with the usage exit code', async () => {
    const r = await oz(['federate', 'issue-token', '--audience', 'a', '--duration', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: invalid --duration "soon"[^\n]*\n$/);
  });

  it("hands what the hot path's parser cannot take to the whole program, from the same file", async () => {
    // A typo on issue-token: the fast parser declines, and the program (an asset compiled at
    // run time) gives commander's message; in the gcp format the failure is the JSON response.
    const typo = await oz(['federate', 'issue-token', '--audiense', 'a']);
    expect(typo).toMatchObject({ code: 2, stdout: '' });
    expect(typo.stderr).toMatch(/^oz: unknown option '--audiense'[^\n]*\n$/);
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp', '--audiense', 'a']);
    expect(gcp).toMatchObject({ code: 2, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ version: 1, success: false, code: 'usage' });
    // The program's own help for a hot command.
    const help = await oz(['federate', 'prepare', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--aws-role-arn');
  });

  it('loads its HTTP client when asked for the token service, and says in one line that none answers', async () => {
    // A loopback port that nobody listens on: connections are refused at once.
    const port = await new Promise<number>((done) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as { port: number };
        s.close(() => done(p));
      });
    });
    const grant = await oz(['issuer', 'grant-run', '--run-id', 'run-1', '--subject', 'user-1', '--max-duration', '1h']);
    expect(grant.code).toBe(0);
    const r = await oz(['federate', 'issue-token', '--audience', 'a'], {
      OZ_RUN_TOKEN: grant.stdout.trim(),
      OZ_TOKEN_URL: `http://127.0.0.1:${port}/v1/token`,
      OZ_TOKEN_TIMEOUT: '2s',
    });
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: [^\n]*127\.0\.0\.1[^\n]*\n$/);
  });
});
