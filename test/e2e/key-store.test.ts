import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OZ_BIN, oz, run, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { serve, type Served } from '../helpers/serve.js';

let home: string;
let env: Record<string, string>;
let data: string;
let server: Served | undefined;
beforeEach(() => {
  home = tempDir();
  env = scrubbedEnv(home);
  data = env.OZ_DATA_DIR!;
});
afterEach(async () => {
  await server?.stop('SIGKILL');
  server = undefined;
});

const isRoot = process.getuid?.() === 0;
/** A uid with no passwd entry, as `docker run --user N` gives. */
const NOBODY_UID = 54321;

const flip = (s: string, i = 10) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;

function tamper(change: (stored: { kid: string; private_jwk: Record<string, string> }) => void) {
  const file = join(data, 'signing-key.json');
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  change(stored);
  writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
}

describe('a key that lies is refused before it signs', () => {
  it.each([
    ['one character of n changed', (s: { private_jwk: Record<string, string> }) => (s.private_jwk.n = flip(s.private_jwk.n!))],
    ['n set to AAAA', (s: { private_jwk: Record<string, string> }) => (s.private_jwk.n = 'AAAA')],
    ['kid changed', (s: { kid: string }) => (s.kid = flip(s.kid))],
  ])('%s: issue-token, jwks and serve exit 3 with one line, and nothing is signed', async (_n, change) => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    tamper(change as never);
    for (const args of [['federate', 'issue-token', '--audience', 'a'], ['issuer', 'jwks'], ['issuer', 'serve', '--port', '0']]) {
      const r = await oz(args, { env });
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 3, stdout: '' });
      expect(r.stderr).toMatch(/^oz: signing key ".*signing-key\.json" is unusable \((its public modulus n is not the product of its primes p and q|its kid ".*" is not the key's RFC 7638 thumbprint ".*")\); oz will not replace it/);
      expect(r.stderr.split('\n')).toHaveLength(2);
    }
    const gcp = await oz(['federate', 'issue-token', '--format', 'gcp'], { env: { ...env, GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: '//iam.googleapis.com/x' } });
    expect(gcp).toMatchObject({ code: 3, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ success: false, code: 'config' });
  });
});

describe('commands that only read the keys never create one', () => {
  it.each([
    [['issuer', 'jwks']],
    [['issuer', 'discovery']],
    [['issuer', 'publish', '--out', 'site']],
  ])('%j on an empty data directory exits 3, names `oz issuer init` and creates nothing', async (args) => {
    const r = await oz(args, { env, cwd: home });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^oz: no signing key in ".*oz-data": run `oz issuer init` first/);
    expect(existsSync(data)).toBe(false);
    expect(existsSync(join(home, 'site'))).toBe(false);
    // The same on a directory that exists but holds no key (a mistyped OZ_DATA_DIR).
    mkdirSync(data, { mode: 0o700 });
    expect((await oz(args, { env, cwd: home })).code).toBe(3);
    expect(readdirSync(data)).toEqual([]);
  });

  it('serve creating a key on its first start says so on stderr; the next start does not', async () => {
    server = await serve(env);
    const kid = JSON.parse(readFileSync(join(data, 'signing-key.json'), 'utf8')).kid;
    // stderr and stdout are separate pipes: the note may arrive just after the URL.
    await until(() => server!.stderr().includes('serving on'));
    expect(server.stderr()).toContain(`oz: no signing key in ${data}: created a new RS256 key, kid ${kid}`);
    await server.stop();
    server = await serve(env);
    await until(() => server!.stderr().includes('serving on'));
    expect(server.stderr()).not.toContain('created a new');
  });
});

describe('errors the environment causes are not internal errors', () => {
  it.runIf(isRoot)('a uid with no passwd entry and no HOME: exit 3 naming OZ_DATA_DIR', async () => {
    for (const args of [['federate', 'issue-token', '--audience', 'a'], ['issuer', 'init']]) {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(OZ_BIN, args, { uid: NOBODY_UID, gid: NOBODY_UID, env: { PATH: process.env.PATH! }, cwd: '/' });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^oz: cannot find a home directory for the data directory \(.*uv_os_homedir.*\): set OZ_DATA_DIR to a private directory/);
      expect(r.stderr.split('\n')).toHaveLength(2);
    }
  });

  it.runIf(isRoot)('rotate in a data directory it cannot write: exit 8, the key left as it was', async () => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    const before = readFileSync(join(data, 'signing-key.json'), 'utf8');
    // Root writes anywhere, so the data directory goes to a user of its own, read-only.
    chmodSync(home, 0o711);
    chownSync(data, NOBODY_UID, NOBODY_UID);
    chownSync(join(data, 'signing-key.json'), NOBODY_UID, NOBODY_UID);
    chmodSync(data, 0o500);
    const r = execFileResult(OZ_BIN, ['issuer', 'rotate'], NOBODY_UID, env);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^oz: cannot rotate the signing key: cannot write in the data directory ".*oz-data": EACCES/);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(readFileSync(join(data, 'signing-key.json'), 'utf8')).toBe(before);
  });

  it.each(['signing-key.json', 'retired-keys.json'])('a FIFO at %s is refused at once, not waited on', async (name) => {
    if (name !== 'signing-key.json') expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    execFileSync('mkfifo', ['-m', '600', join(data, name)]);
    const r = await oz(['issuer', 'jwks'], { env, timeoutMs: 10_000 });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(name === 'signing-key.json' ? /is unusable \(it is not a regular file\)/ : /cannot read ".*retired-keys\.json": not a regular file/);
  });

  it.each([
    ['a null entry', '{"keys": [null]}', /entry 0: expected an object, found null/],
    ['no keys array', '{"keys": null}', /no "keys" array/],
    ['a JWK with an empty n', 'EMPTY_N', /entry 0: "n" is not a base64url string/],
  ])('retired-keys.json with %s: exit 3 naming the file', async (_n, content, message) => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    expect((await oz(['issuer', 'rotate'], { env })).code).toBe(0);
    const file = join(data, 'retired-keys.json');
    if (content === 'EMPTY_N') {
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      doc.keys[0].jwk.n = '';
      content = JSON.stringify(doc);
    }
    writeFileSync(file, content, { mode: 0o600 });
    for (const args of [['issuer', 'jwks'], ['issuer', 'rotate']]) {
      const r = await oz(args, { env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^oz: retired key list ".*retired-keys\.json" is corrupt \(/);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('advice and modes', () => {
  it.runIf(isRoot).each(['/tmp', '/', '/usr', '/var/tmp'])('a data directory %s gets no chmod advice, but a private directory to use', async (dir) => {
    const r = await oz(['issuer', 'jwks'], { env: { ...env, OZ_DATA_DIR: dir } });
    expect(r.code).toBe(3);
    expect(r.stderr).not.toMatch(/chmod/);
    expect(r.stderr).toMatch(/open to other users; it is shared or a system directory: set OZ_DATA_DIR to a private directory such as ~\/\.local\/share\/oz\n$/);
  });

  it.runIf(isRoot)('a prepare directory /tmp gets no chmod advice either', async () => {
    const r = await oz(['federate', 'prepare', '--dir', '/tmp', '--aws-role-arn', 'arn:aws:iam::123456789012:role/r'], { env });
    expect(r.code).toBe(3);
    expect(r.stderr).not.toMatch(/chmod/);
    expect(r.stderr).toMatch(/pass --dir \(or set OZ_PREPARE_DIR\) a private directory/);
  });

  it('a directory of ones own that is too open still gets the chmod that fixes it', async () => {
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    const r = await oz(['issuer', 'jwks'], { env });
    expect(r.stderr).toBe(`oz: data directory "${data}" has mode 755, open to other users; run: chmod 700 ${data}\n`);
  });

  it.each(['000', '077'])('publish under umask %s: directories 0755, files 0644', async (umask) => {
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
    const out = join(home, 'site', 'www');
    const r = await run('/bin/sh', ['-c', `umask ${umask}; exec "$0" "$@"`, OZ_BIN, 'issuer', 'publish', '--out', out, '--issuer', 'https://oidc.example.com'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    for (const d of [join(home, 'site'), out, join(out, '.well-known')]) expect({ d, mode: statSync(d).mode & 0o7777 }).toEqual({ d, mode: 0o755 });
    for (const f of ['openid-configuration', 'jwks.json']) {
      const p = join(out, '.well-known', f);
      expect({ p, mode: statSync(p).mode & 0o7777 }).toEqual({ p, mode: 0o644 });
    }
  });
});

function execFileResult(file: string, args: string[], uid: number, env: Record<string, string>): { code: number | null; stderr: string } {
  try {
    execFileSync(file, args, { uid, gid: uid, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    return { code: 0, stderr: '' };
  } catch (e) {
    const err = e as { status: number | null; stderr: string };
    return { code: err.status, stderr: err.stderr };
  }
}

async function until(ready: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}
