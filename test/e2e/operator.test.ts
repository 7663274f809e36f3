import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { oz, scrubbedEnv, tempDir } from '../helpers/oz.js';
import { RED_OZ, escapeRe, expectNoTrace, hasScript, onTerminal } from '../helpers/terminal.js';

/**
 * What an operator meets at a prompt beyond colour: notes when a token is shorter than asked
 * or a token service is slow, warnings about an issuer that clouds cannot use, and output
 * that other programs (jq, oz itself) can read.
 */

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A JWT with any claims; the stand-in below does not check signatures, so neither part is real. */
const unsignedJwt = (claims: Record<string, unknown>, typ = 'JWT') => `${b64({ alg: 'RS256', kid: 'k', typ })}.${b64(claims)}.c2ln`;

describe('a token service seen from the sandbox', () => {
  let server: Server;
  let base: string;
  const hits: string[] = [];

  beforeAll(async () => {
    // /busy/… always fails with 503; /short/… caps every token at 10 minutes; anything else
    // grants what was asked.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push(req.url ?? '');
        if (req.url?.startsWith('/busy/')) {
          res.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: 'Service Unavailable', detail: 'warming up' }));
          return;
        }
        const { audience, duration_seconds: asked } = JSON.parse(body) as { audience: string; duration_seconds: number };
        const now = Math.floor(Date.now() / 1000);
        const exp = now + (req.url?.startsWith('/short/') ? 600 : asked);
        const token = unsignedJwt({ iss: 'https://oidc.example.com', sub: 'user-1', aud: audience, iat: now - 30, exp, run_id: 'run-1' });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_at: new Date(exp * 1000).toISOString() }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const runToken = (iss: unknown) =>
    unsignedJwt({ iss, sub: 'user-1', aud: 'oz:token-service', exp: Math.floor(Date.now() / 1000) + 3600, run_id: 'run-1' }, 'oz-run+jwt');

  it("with neither OZ_TOKEN_URL nor OZ_ISSUER_URL, asks the run token's own issuer", async () => {
    const home = tempDir('oz-op-');
    const env = scrubbedEnv(home, { OZ_RUN_TOKEN: runToken(`${base}/tenant`), NO_PROXY: '127.0.0.1' });
    hits.length = 0;
    const r = await oz(['federate', 'issue-token', '--audience', 'sts.amazonaws.com'], { env });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(hits).toEqual(['/tenant/v1/token']);
    const who = JSON.parse((await oz(['federate', 'whoami', '--json'], { env })).stdout);
    expect(who).toMatchObject({ token_url: `${base}/tenant/v1/token`, issuer: `${base}/tenant` });

    const bad = await oz(['federate', 'issue-token', '--audience', 'x'], { env: { ...env, OZ_RUN_TOKEN: runToken('ftp://oidc.example.com') } });
    expect(bad).toMatchObject({ code: 3, stdout: '' });
    expect(bad.stderr).toBe(
      'oz: the run token\'s issuer "ftp://oidc.example.com" cannot name the token service: it must be an http(s) URL with no query, fragment or credentials (set OZ_TOKEN_URL or OZ_ISSUER_URL)\n',
    );
  });

  it('whoami of a run whose run token has expired shows it, then exits 4', async () => {
    const home = tempDir('oz-op-');
    const expired = unsignedJwt({ iss: 'https://oidc.example.com', sub: 'user-1', aud: 'oz:token-service', exp: Math.floor(Date.now() / 1000) - 60, run_id: 'run-1' }, 'oz-run+jwt');
    const r = await oz(['federate', 'whoami'], { env: scrubbedEnv(home, { OZ_RUN_TOKEN: expired }) });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/time left\s+none: the run token expired/);
    expect(r.stderr).toMatch(/^oz: the run token \(OZ_RUN_TOKEN\) expired \S+ ago: no token can be issued for this run\n$/);
  });

  it('says on stderr when the token service gave a shorter token than --duration asked, never in --format gcp', async () => {
    const home = tempDir('oz-op-');
    const env = scrubbedEnv(home, { OZ_RUN_TOKEN: runToken('https://oidc.example.com'), OZ_TOKEN_URL: `${base}/short/v1/token` });
    const capped = await oz(['federate', 'issue-token', '--audience', 'x', '--duration', '2h'], { env });
    expect(capped.code).toBe(0);
    expect(capped.stderr).toMatch(/^oz: the token is valid for about (9m\d+s|10m), not the 2h asked for: the token service capped it/);
    const within = await oz(['federate', 'issue-token', '--audience', 'x', '--duration', '5m'], { env });
    expect(within).toMatchObject({ code: 0, stderr: '' });
    const gcp = await oz(['federate', 'issue-token', '--audience', 'x', '--duration', '2h', '--format', 'gcp'], { env });
    expect(gcp).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(gcp.stdout)).toMatchObject({ success: true });
  });

  it.skipIf(!hasScript)('on a terminal, says once that it is retrying; in a pipe and in --format gcp, nothing', async () => {
    const home = tempDir('oz-op-');
    const extra = { OZ_RUN_TOKEN: runToken('https://oidc.example.com'), OZ_TOKEN_URL: `${base}/busy/v1/token`, OZ_TOKEN_TIMEOUT: '2s' };
    const [tty, gcp] = await onTerminal(
      home,
      [
        'oz federate issue-token --audience x',
        'oz federate issue-token --audience x --format gcp',
      ],
      extra,
    );
    expect(tty!.code).toBe(5);
    const lines = tty!.output.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^oz: the token service at ${escapeRe(base)}/busy/v1/token failed: HTTP 503 Service Unavailable: warming up; retrying for up to 2s \\(OZ_TOKEN_TIMEOUT\\)$`));
    expect(lines[1]).toMatch(new RegExp(`^${escapeRe(RED_OZ)} the token service at `));
    expectNoTrace(tty!);
    expect(gcp!.code).toBe(5);
    expect(JSON.parse(gcp!.output)).toMatchObject({ success: false, code: 'remote_unavailable' });

    const piped = await oz(['federate', 'issue-token', '--audience', 'x'], { env: scrubbedEnv(home, extra) });
    expect(piped.code).toBe(5);
    expect(piped.stderr).not.toMatch(/retrying/);
    expect(piped.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it.skipIf(!hasScript)('a shell init whose token service accepts and never answers hears once that oz is retrying', async () => {
    // Accepts connections and reads, never answers: each attempt waits out its own timeout.
    const sockets = new Set<Socket>();
    const silent = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('data', () => {});
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1/token`;
    try {
      const home = tempDir('oz-op-');
      const [init] = await onTerminal(
        home,
        // What an init script does: stdout captured for eval, stderr on the terminal.
        [`(out="$(oz federate prepare --aws-role-arn arn:aws:iam::123456789012:role/agent --dir ${home}/prep)"; rc=$?; [ -z "$out" ] || echo "stdout: $out"; exit $rc)`],
        { OZ_RUN_TOKEN: runToken('https://oidc.example.com'), OZ_TOKEN_URL: url, OZ_TOKEN_TIMEOUT: '7s' },
      );
      expect(init!.code).toBe(5);
      const lines = init!.output.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(new RegExp(`^oz: cannot reach the token service at ${escapeRe(url)}: .*; retrying for up to 7s \\(OZ_TOKEN_TIMEOUT\\)$`));
      expect(lines[1]).toMatch(new RegExp(`^${escapeRe(RED_OZ)} the token service at ${escapeRe(url)} did not answer within 7s`));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

describe('the embedded issuer at a prompt', () => {
  let home: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    home = tempDir('oz-op-');
    env = scrubbedEnv(home);
    expect((await oz(['issuer', 'init'], { env })).code).toBe(0);
  });

  it.each([
    [['--duration', '5h'], {}, "oz: the token is valid for 4h, not the 5h asked for: capped by the run's maximum duration (OZ_MAX_RUN_DURATION)\n"],
    [['--duration', '30h'], { OZ_MAX_RUN_DURATION: '48h' }, 'oz: the token is valid for 23h59m30s, not the 1d6h asked for: capped by the one-day ceiling on a token (counted from the backdated iat)\n'],
    [['--duration', '2h'], {}, ''],
    [[], { OZ_MAX_RUN_DURATION: '30m' }, ''],
  ])('issue-token %j with %j says on stderr %j', async (args, extra, stderr) => {
    const r = await oz(['federate', 'issue-token', '--audience', 'x', ...args], { env: { ...env, ...extra } });
    expect(r).toMatchObject({ code: 0, stderr });
  });

  it('names the deadline when it caps --duration, and says nothing in --format gcp', async () => {
    const deadline = String(Math.floor(Date.now() / 1000) + 600);
    const r = await oz(['federate', 'issue-token', '--audience', 'x', '--duration', '2h'], { env: { ...env, OZ_RUN_DEADLINE: deadline } });
    expect(r.stderr).toMatch(/^oz: the token is valid for (9m\d+s|10m), not the 2h asked for: capped by the time left before the run's deadline \(OZ_RUN_DEADLINE\)\n$/);
    const gcp = await oz(['federate', 'issue-token', '--audience', 'x', '--duration', '2h', '--format', 'gcp'], { env: { ...env, OZ_RUN_DEADLINE: deadline } });
    expect(gcp).toMatchObject({ code: 0, stderr: '' });
  });

  it('whoami of a run past its deadline shows it, then exits 4; --json too', async () => {
    const past = { ...env, OZ_RUN_DEADLINE: '2020-01-01T00:00:00Z' };
    const text = await oz(['federate', 'whoami'], { env: past });
    expect(text.code).toBe(4);
    expect(text.stdout).toMatch(/time left\s+none: the deadline passed/);
    expect(text.stderr).toMatch(/^oz: the run's deadline \(OZ_RUN_DEADLINE\) passed \S+ ago: no token can be issued for this run\n$/);
    const json = await oz(['federate', 'whoami', '--json'], { env: past });
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout)).toMatchObject({ seconds_left: 0, deadline: '2020-01-01T00:00:00.000Z' });
    expect((await oz(['federate', 'whoami'], { env })).code).toBe(0);
  });

  it('prepare --shell json with nothing configured prints {} (other shells print nothing)', async () => {
    const json = await oz(['federate', 'prepare', '--shell', 'json'], { env });
    expect(json).toMatchObject({ code: 0, stdout: '{}\n' });
    expect(json.stderr).toMatch(/^oz: nothing to prepare/);
    expect(await oz(['federate', 'prepare'], { env })).toMatchObject({ code: 0, stdout: '' });
  });

  it('rotate --json is snake_case and reminds to publish again', async () => {
    const r = await oz(['issuer', 'rotate', '--json'], { env });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc.previous).sort()).toEqual(['alg', 'keep_until', 'kid']);
    expect(Date.parse(doc.previous.keep_until)).toBeGreaterThan(Date.now() + 86_000_000);
    expect(r.stderr).toBe("oz: if the issuer's files are hosted statically, run `oz issuer publish --out DIR` again so that relying parties see the new key\n");
  });

  it.each([
    [[], {}, /^oz: warning: the issuer http:\/\/127\.0\.0\.1:8787 is a local address \(127\.0\.0\.1:8787\) that they cannot reach; AWS, GCP and Azure need a public https issuer/],
    [['--issuer', 'http://oidc.example.com'], {}, /^oz: warning: the issuer http:\/\/oidc\.example\.com is plain http; AWS, GCP and Azure need a public https issuer/],
    [[], { OZ_ISSUER_URL: 'https://localhost:8443' }, /^oz: warning: the issuer https:\/\/localhost:8443 is a local address/],
    [['--issuer', 'https://oidc.example.com'], {}, undefined],
  ])('publish %j %j warns about an issuer clouds cannot use', async (args, extra, warning) => {
    const out = join(home, `site-${Math.random().toString(36).slice(2)}`);
    const r = await oz(['issuer', 'publish', '--out', out, ...args], { env: { ...env, ...extra } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('.well-known/jwks.json');
    if (warning) {
      expect(r.stderr).toMatch(warning);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    } else {
      expect(r.stderr).toBe('');
    }
  });

  it.each([
    [['--host', '0.0.0.0'], {}, true],
    [['--host', '0.0.0.0'], { OZ_ISSUER_URL: 'http://oidc.example.com' }, true],
    [['--host', '0.0.0.0'], { OZ_ISSUER_URL: 'https://oidc.example.com' }, false],
    [[], {}, false],
  ])('serve %j %j warns: %s', async (args, extra, warns) => {
    const { spawn } = await import('node:child_process');
    const { OZ_BIN } = await import('../helpers/oz.js');
    const child = spawn(OZ_BIN, ['issuer', 'serve', '--port', '0', ...args], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // The start-up line is the last note serve prints before it serves.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 20_000);
      child.stderr.on('data', () => {
        if (/serving on/.test(stderr)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    if (warns) expect(stderr).toMatch(/^oz: warning: the issuer \S+ is (a local address|plain http).*AWS, GCP and Azure need a public https issuer/m);
    else expect(stderr).not.toMatch(/warning/);
  });

  it('inspect reads the token out of oz JSON: issue-token --format json or gcp, as an argument or on stdin', async () => {
    const json = (await oz(['federate', 'issue-token', '--audience', 'a', '--format', 'json'], { env })).stdout;
    const gcp = (await oz(['federate', 'issue-token', '--audience', 'b', '--format', 'gcp'], { env })).stdout;
    for (const [input, aud] of [[json, 'a'], [gcp, 'b']] as const) {
      const viaStdin = await oz(['federate', 'inspect', '--json'], { env, input });
      expect(viaStdin.code).toBe(0);
      expect(JSON.parse(viaStdin.stdout).claims.aud).toBe(aud);
      const viaArg = await oz(['federate', 'inspect', input.trim(), '--json'], { env });
      expect(JSON.parse(viaArg.stdout).claims.aud).toBe(aud);
    }
    const none = await oz(['federate', 'inspect'], { env, input: '{"nothing": 1}' });
    expect(none).toMatchObject({ code: 2, stderr: 'oz: the JSON holds no "token", "id_token" or "run_token" string\n' });
  });
});
